fn main() {
    match alarmscope::cli::run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("alarmscope: {e:#}");
            std::process::exit(2);
        }
    }
}
