fn main() {
    println!("xtask: not wired yet");
}
