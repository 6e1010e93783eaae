//! [`NetNs`]: a throwaway Linux network namespace joined to the host by a veth pair, whose
//! link can be cut and healed (a network partition between a process inside and a server
//! on the host).
//!
//! It needs root and iproute2 (`ip`). [`NetNs::create`] reports why it cannot be set up
//! (not root, no `ip`, the kernel refuses) as an `Err`, so that a test can print
//! `SKIPPED: <reason>` and return. Names are unique per process (`clp<pid>` for the
//! namespace, `clh<pid>` / `cln<pid>` for the host and namespace ends of the veth pair), the
//! addresses are a private /30 (`10.213.X.Y/30`) chosen from the pid, and everything is
//! deleted on `Drop`, also while a test panics.

use std::process::{Command, Stdio};

/// A network namespace with a veth pair to the host; deleted on `Drop`.
///
/// ```no_run
/// let ns = cachelock_testkit::NetNs::create().expect("root and iproute2");
/// // A server on the host binds ns.host_addr(); a process started with
/// // ns.exec_prefix() reaches it there.
/// ns.cut();
/// ns.heal();
/// ```
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    ns_if: String,
    host_addr: String,
    ns_addr: String,
}

/// Runs `ip args`, returning its stderr (or why it could not run) on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates the namespace and the veth pair, addresses both ends, and brings them (and
    /// the namespace's loopback) up. `Err` says why not (not root, no `ip`, ...); whatever
    /// was created before the failure is deleted again.
    pub fn create() -> Result<NetNs, String> {
        let pid = std::process::id();
        // Two pids map to the same /30 only 2^14 pids apart; the names are unique anyway.
        let third = (pid >> 6) & 0xff;
        let fourth = (pid & 0x3f) * 4;
        let ns = NetNs {
            name: format!("clp{pid}"),
            host_if: format!("clh{pid}"),
            ns_if: format!("cln{pid}"),
            host_addr: format!("10.213.{third}.{}", fourth + 1),
            ns_addr: format!("10.213.{third}.{}", fourth + 2),
        };
        ip(&["netns", "add", &ns.name])?;
        // From here on, `Drop` deletes what exists (the namespace takes its end of the pair
        // with it; the host end is deleted explicitly).
        let host_cidr = format!("{}/30", ns.host_addr);
        let ns_cidr = format!("{}/30", ns.ns_addr);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.ns_if,
        ])?;
        ip(&["link", "set", &ns.ns_if, "netns", &ns.name])?;
        ip(&["addr", "add", &host_cidr, "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ns.exec_ip(&["addr", "add", &ns_cidr, "dev", &ns.ns_if])?;
        ns.exec_ip(&["link", "set", &ns.ns_if, "up"])?;
        ns.exec_ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `ip args` inside the namespace.
    fn exec_ip(&self, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host end's address (`10.213.X.Y`): bind a server here to reach it from inside.
    pub fn host_addr(&self) -> &str {
        &self.host_addr
    }

    /// The namespace end's address.
    pub fn ns_addr(&self) -> &str {
        &self.ns_addr
    }

    /// `["ip", "netns", "exec", NAME]`: put it before a command to run it inside.
    pub fn exec_prefix(&self) -> [String; 4] {
        [
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.name.clone(),
        ]
    }

    /// Cuts the link: the namespace's end goes down, and nothing passes between the
    /// namespace and the host until [`heal`](NetNs::heal). Open TCP connections are not
    /// reset (no packet reaches either side): inside, sends find no route and are retried
    /// by TCP; on the host, replies to the namespace's address are dropped at the veth (the
    /// host end stays up without a carrier, so its route stays and nothing is sent
    /// anywhere else). Panics if `ip` fails.
    pub fn cut(&self) {
        self.exec_ip(&["link", "set", &self.ns_if, "down"])
            .expect("cut the veth link");
    }

    /// Heals the link cut by [`cut`](NetNs::cut). Panics if `ip` fails.
    pub fn heal(&self) {
        self.exec_ip(&["link", "set", &self.ns_if, "up"])
            .expect("heal the veth link");
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Best effort, quietly: the host end may be gone already (deleting the namespace
        // deletes the pair).
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
