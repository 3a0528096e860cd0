//! The relay under test seen from outside: its resident memory and CPU time from
//! `/proc/<pid>`, a polite stop (SIGTERM), and the CPU masks of the bench's own threads.
//!
//! Owns: reading `/proc/<pid>/status` (`VmRSS`) and `/proc/<pid>/stat` (`utime + stime`),
//! `sched_setaffinity` of the calling thread, `kill(pid, SIGTERM)`. Must not: touch any
//! process but the child it was given.

/// `VmRSS` of `/proc/<pid>/status`, in KiB; `None` once the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// `utime + stime` of `/proc/<pid>/stat` (every thread of the process), in seconds;
/// `None` once the process is gone.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_sec() as f64)
}

/// `utime + stime` in clock ticks from a `/proc/<pid>/stat` line. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after the last `)`:
/// `utime` and `stime` are fields 14 and 15 of the line, 12 and 13 after it.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`; 100 when unknown, the
/// Linux USER_HZ of every mainstream architecture).
#[allow(unsafe_code)]
fn clock_ticks_per_sec() -> i64 {
    // SAFETY: sysconf reads a constant of the running system; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as i64 } else { 100 }
}

/// CPUs this process may run on (as `core_affinity` lists them: the calling thread's mask).
pub fn allowed_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Restrict the calling thread (and every thread it spawns afterwards) to `cpus`. Returns
/// false when the mask is empty or the kernel refused it.
#[allow(unsafe_code)]
pub fn pin_current_thread(cpus: &[usize]) -> bool {
    if cpus.is_empty() {
        return false;
    }
    // SAFETY: cpu_set_t is a plain bit array; zeroed is its empty value. CPU_SET ignores
    // indexes past the set's size. sched_setaffinity(0, …) applies to the calling thread
    // and reads exactly `size_of::<cpu_set_t>()` bytes of `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Ask process `pid` (the relay child) to stop.
#[allow(unsafe_code)]
pub fn terminate(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill has no memory preconditions; `pid` is our own child, still unreaped
    // (the caller waits on it after this), so the id cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_after_a_command_with_spaces() {
        let line = "1234 (relay core (x)) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(parse_stat_ticks(line), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_secs(pid).is_some());
    }
}
