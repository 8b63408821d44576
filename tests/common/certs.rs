//! A throwaway CA and a server certificate for 127.0.0.1/localhost, for TLS tests.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// PEM texts of a CA and of a server certificate it signed.
pub struct TestPki {
    /// The CA certificate (what `POSTGRES_SSL_ROOT_CERT` points at).
    pub ca_pem: String,
    /// The server certificate.
    pub server_cert_pem: String,
    /// The server's private key.
    pub server_key_pem: String,
}

/// A new CA and a server certificate valid for `127.0.0.1` and `localhost`.
pub fn generate() -> TestPki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "deploystack test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    TestPki {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}
