//! Free loopback ports.
//!
//! `nats-server` and `clickhouse-server` cannot be told "port 0" and report the
//! port they got, so the harness asks the kernel for free ports, releases them
//! and hands the numbers to the server. Another process may grab a port in
//! between; the servers then exit with "address already in use" and the
//! harness retries with fresh ports.

use std::net::{Ipv4Addr, TcpListener};

use crate::HarnessError;

/// `N` distinct ports that were free on 127.0.0.1 a moment ago.
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N], HarnessError> {
    let mut ports = [0u16; N];
    ports.copy_from_slice(&free_port_list(N)?);
    Ok(ports)
}

/// `n` distinct ports that were free on 127.0.0.1 a moment ago.
pub(crate) fn free_port_list(n: usize) -> Result<Vec<u16>, HarnessError> {
    // Hold every listener until all are chosen, so the ports are distinct.
    let mut listeners = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| HarnessError::io("binding 127.0.0.1:0 to find a free port", e))?;
        ports.push(
            listener
                .local_addr()
                .map_err(|e| HarnessError::io("reading the address of a free port", e))?
                .port(),
        );
        listeners.push(listener);
    }
    Ok(ports)
}

/// A loopback port that nothing listens on (at the moment of the call): point a
/// service at it to test how it behaves when a dependency is unreachable.
///
/// # Panics
/// If no port can be bound on 127.0.0.1.
pub fn closed_port() -> u16 {
    match free_ports::<1>() {
        Ok([port]) => port,
        Err(error) => panic!("{error}"),
    }
}
