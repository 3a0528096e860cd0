//! Waiting for SIGINT / SIGTERM on the main thread.
//!
//! Owns: the process signal mask. The two signals are blocked in the calling thread
//! *before* any other thread starts (threads inherit the mask), so they are only ever
//! delivered to `sigwait` here and never interrupt an executor.

/// Block SIGINT and SIGTERM in this thread (call before spawning threads).
#[allow(unsafe_code)]
pub fn block_termination() {
    // SAFETY: sigemptyset/sigaddset write only into the local set; pthread_sigmask
    // changes this thread's mask and reads the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Wait until SIGINT or SIGTERM arrives; returns its name.
#[allow(unsafe_code)]
pub fn wait_for_termination() -> &'static str {
    let mut signal: libc::c_int = 0;
    // SAFETY: as above; sigwait writes the received signal into `signal`.
    let result = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigwait(&set, &mut signal)
    };
    match (result, signal) {
        (0, libc::SIGINT) => "SIGINT",
        (0, libc::SIGTERM) => "SIGTERM",
        _ => "signal",
    }
}
