//! Load suite for the queue core (see issue 7).

fn main() {
    eprintln!("load: not implemented yet");
    std::process::exit(2);
}
