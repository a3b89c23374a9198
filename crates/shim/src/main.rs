fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(berth_shim::main_entry(args));
}
