/// mimalloc instead of the system allocator: the listener allocates and frees small buffers per
/// request on every worker thread, and glibc's per-thread arenas spent a sixth of its CPU in
/// malloc/free (growing and trimming arenas with mprotect) under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Behave like other command-line tools in a pipe (`alarmscope ... | head`): end quietly on a
    // closed pipe instead of panicking in println!.
    // SAFETY: resetting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match alarmscope::cli::run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("alarmscope: {e:#}");
            std::process::exit(2);
        }
    }
}
