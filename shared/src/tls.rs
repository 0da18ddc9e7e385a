//! The process's TLS provider: rustls with ring, installed once as the process default. Every
//! TLS client of Celeriac uses it: `rediss://` connections, `https://` remote task endpoints,
//! the HTTP clients of the CLI and the bench. reqwest is built without a provider of its own
//! (its `rustls-no-provider` feature, so no second crypto library is compiled), and a reqwest
//! client built before this is called panics: every binary calls it first thing, and so does
//! the broker's connector.

/// Installs ring as the process's rustls provider (a second call changes nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
