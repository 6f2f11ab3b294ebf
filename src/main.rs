/// mimalloc instead of glibc's allocator: replay allocates and frees per exchange and part
/// (headers, strings, event trees), the listener small buffers per request on every worker
/// thread; glibc's malloc/free measured ~10% of a replay's CPU and a sixth of the listener's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
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
