-- example row: ('e1', 'demo', 'e2085be5-9137-4e4e-80b5-f1ffddc25423', 'party', 'AppName', '{"host":"www.party.com","path":"/"}', 1632647727, 1632647727243860, 1632647727, 1632647727500000)
INSERT INTO events (event_id, client_id, session_id, category, name, data, timestamp, timestamp_us, received_at, received_us)
