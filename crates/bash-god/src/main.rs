fn main() {
    println!("bash-god: not wired yet");
}
