fn main() {
    // sqlx::migrate! embeds the files it finds when it compiles: a migration added later
    // must rebuild the crate, or the binary would not know it.
    println!("cargo:rerun-if-changed=../migrations");
}
