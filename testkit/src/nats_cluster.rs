//! Several throwaway `nats-server`s forming one JetStream cluster on loopback.
//!
//! Every member is an ordinary [`NatsServer`] (its own ports, store and name,
//! killed on drop), started from a configuration file whose `cluster {}` block
//! reads the variables below, such as `deploy/nats/cluster.conf`. A member
//! can be killed and started again: it keeps its name (JetStream's identity
//! of a peer) and its store, and rejoins.

use std::time::Duration;

use crate::nats_server::{NatsServer, NatsServerBuilder};
use crate::ports::free_port_list;
use crate::HarnessError;

/// The variable the file's `cluster { name }` is read from (the same for
/// every member).
pub const CLUSTER_NAME_ENV: &str = "EYE_NATS_CLUSTER_NAME";
/// The variable the file's `cluster { port }` is read from (the member's own
/// route port).
pub const CLUSTER_PORT_ENV: &str = "EYE_NATS_CLUSTER_PORT";
/// The variable the file's `cluster { routes }` is read from: a list,
/// `[nats://127.0.0.1:P1, nats://127.0.0.1:P2, ...]`, the same for every
/// member (a route to itself is recognised and dropped by the server).
pub const ROUTES_ENV: &str = "EYE_NATS_ROUTES";

/// How long the members may take to find each other and elect a meta leader.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

impl NatsServerBuilder {
    /// Starts `size` servers from this configuration (which must have a
    /// `cluster {}` block reading [`CLUSTER_NAME_ENV`], [`CLUSTER_PORT_ENV`]
    /// and [`ROUTES_ENV`]) and waits until they form one JetStream cluster:
    /// every member sees `size` peers and a meta leader, and answers
    /// `/healthz` 200.
    ///
    /// Blocks the calling thread (typically one to three seconds).
    pub fn start_cluster(self, size: usize) -> Result<Vec<NatsServer>, HarnessError> {
        let cluster_name = crate::unique_name("eye_cluster");
        let route_ports = free_port_list(size)?;
        let routes = route_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut members = Vec::with_capacity(size);
        for port in &route_ports {
            let member = self
                .clone()
                .env(CLUSTER_NAME_ENV, &cluster_name)
                .env(CLUSTER_PORT_ENV, port.to_string())
                .env(ROUTES_ENV, format!("[{routes}]"))
                .start()?;
            members.push(member);
        }
        for member in &mut members {
            member.wait_monitor(FORM_TIMEOUT, |monitor_port| formed(monitor_port, size))?;
            member.wait_healthy(FORM_TIMEOUT)?;
        }
        Ok(members)
    }
}

/// Whether the member on `monitor_port` sees a meta group of `size` peers
/// with a leader (its `/jsz`).
fn formed(monitor_port: u16, size: usize) -> Result<(), String> {
    let (status, body) = crate::probe::http(monitor_port, "GET", "/jsz", "")?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let has_size = compact.contains(&format!("\"cluster_size\":{size}"));
    let has_leader = compact
        .split("\"leader\":\"")
        .nth(1)
        .is_some_and(|rest| !rest.starts_with('"'));
    if status == 200 && has_size && has_leader {
        Ok(())
    } else {
        Err(format!(
            "/jsz answered {status}, meta group not formed: {body}"
        ))
    }
}
