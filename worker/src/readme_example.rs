//! The README's "Your own tasks" quotes `worker/examples/own_tasks.rs`, which CI builds
//! (`cargo build --all-targets`), so the example a newcomer copies always compiles. This test
//! fails when the README's copy and the file drift apart.

#[test]
fn the_readme_quotes_the_own_tasks_example_verbatim() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/own_tasks.rs");
    let quoted = format!("```rust\n{example}```\n");
    assert!(
        readme.contains(&quoted),
        "README.md's \"Your own tasks\" must quote worker/examples/own_tasks.rs verbatim"
    );
}
