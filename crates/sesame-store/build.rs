// `sqlx::migrate!` embeds the migrations at compile time; this rebuilds the
// crate when one is added or changed (as `sqlx migrate build-script` does).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
