//! Whether the process that owns a namespace still runs, when it runs on this machine.
//!
//! A namespace's lock says its owner lives, but the lock goes with the owner's PostgreSQL
//! session, and a session can drop while its process lives (a restart, an idle timeout). Its
//! watcher takes the lock back within a second; meanwhile another process's reaper must not take
//! the namespace. So environments register their machine (hostname and boot id) and process
//! id, and a reaper on the same machine spares a namespace whose process still runs. Owners on
//! other machines, or on systems without `/proc`, are judged by their lock alone.

use serde_json::{json, Value};

/// This process, as registered with its namespaces.
pub(crate) fn owner() -> Value {
    json!({ "machine": machine(), "pid": std::process::id() })
}

/// Whether the owner registered in `resources` is a process of this machine that still runs.
pub(crate) fn owner_alive(resources: &Value) -> bool {
    let owner = &resources["owner_process"];
    let (Some(machine_id), Some(pid)) = (owner["machine"].as_str(), owner["pid"].as_u64()) else {
        return false;
    };
    match machine() {
        Some(here) if here == machine_id => runs(pid),
        _ => false,
    }
}

/// Hostname and boot id: containers of one host share the boot id, not the hostname.
fn machine() -> Option<String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let host = read("/proc/sys/kernel/hostname")?;
    let boot = read("/proc/sys/kernel/random/boot_id")?;
    Some(format!("{host}/{boot}"))
}

/// Whether process `pid` exists and is not a zombie.
fn runs(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_pid_that_does_not_run_is_not() {
        let me = json!({ "owner_process": owner() });
        assert!(owner_alive(&me) || machine().is_none());
        let gone = json!({ "owner_process": { "machine": machine(), "pid": u64::from(u32::MAX) } });
        assert!(!owner_alive(&gone));
        assert!(!owner_alive(&json!({})));
    }
}
