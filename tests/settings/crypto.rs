//! Compatibility of the encryption with upstream, checked with Node.js.

use deploystack_backend::settings::crypto::CryptoError;
use secrecy::ExposeSecret;

use crate::cipher;

/// Runs the upstream algorithm (Node's crypto) on `args`; its standard output.
pub(crate) fn node(args: &[&str]) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/upstream_crypto.js"
    );
    let out = std::process::Command::new("node")
        .arg(script)
        .args(args)
        .output()
        .expect("Node.js is needed for the upstream compatibility test (apt-get install nodejs)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim_end_matches('\n')
        .to_owned()
}

#[test]
fn encryption_matches_upstream_both_ways() {
    let secret = "upstream-secret-for-tests";
    let c = cipher(secret);
    // A vector produced by Node's crypto with upstream's parameters.
    let vector = "d50a21d2a461f5f72d9b08d635e7718a:c95f192f92d21aa34ab7a9a60b9571c1:e2549567439ae0e296cb06e8b7763d8bc70cdbb2034c8a57c11d";
    assert_eq!(
        c.decrypt(vector).expect("decrypt").expose_secret(),
        "p@ssw0rd – ünïcode ✓"
    );
    let empty = "812ad88f721652c2f0c837d49b559eb6:6bcfd3a87feeb1d424d186f204ad0b8e:";
    assert_eq!(c.decrypt(empty).expect("decrypt").expose_secret(), "");

    // Live, both directions.
    for text in ["hunter2", "", "multi\nline ✓"] {
        let from_node = node(&["encrypt", secret, text]);
        assert_eq!(
            c.decrypt(&from_node).expect("decrypt node").expose_secret(),
            text
        );
        let ours = c.encrypt(text);
        assert!(ours
            .chars()
            .all(|ch| ch == ':' || ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
        assert_eq!(node(&["decrypt", secret, &ours]), text);
    }
    // Fresh IV each time.
    assert_ne!(c.encrypt("same"), c.encrypt("same"));
    assert!(matches!(
        cipher("other").decrypt(vector),
        Err(CryptoError::Authentication)
    ));
    assert!(format!("{c:?}").len() < 20, "Debug shows no key material");
}
