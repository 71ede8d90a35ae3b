//! FTPS: the TLS client configuration and the one server-certificate check
//! (CA roots, or a pinned fingerprint), with messages that name the
//! certificate's fingerprint so an operator can compare or pin it.

use super::FtpOptions;
use crate::backend::location::FtpUrl;
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest as _, Sha256};
use std::sync::Arc;

/// The TLS client configuration for `url` as `options` ask.
pub(super) fn client_config(options: &FtpOptions, url: &FtpUrl) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        if options.tls12_only { &[&rustls::version::TLS12] } else { rustls::DEFAULT_VERSIONS };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| Error::InvalidArgument(format!("TLS setup: {e}")))?;
    let trusted = match options.pin_sha256 {
        Some(pin) => Trusted::Pin(pin),
        None => {
            let roots = Arc::new(roots(options.ca_file.as_deref())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| Error::InvalidArgument(format!("TLS setup for `{url}`: {e}")))?;
            Trusted::Roots(webpki)
        }
    };
    let check = Arc::new(ServerCheck { trusted, provider });
    Ok(builder.dangerous().with_custom_certificate_verifier(check).with_no_client_auth())
}

/// The CA certificates of `--ca-file`, else the system's roots.
fn roots(ca_file: Option<&camino::Utf8Path>) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(file) = ca_file else {
        for certificate in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(certificate);
        }
        return Ok(roots);
    };
    use rustls_pki_types::pem::PemObject;
    let refused = |e: &dyn std::fmt::Display| Error::InvalidArgument(format!("CA file `{file}`: {e}"));
    for certificate in CertificateDer::pem_file_iter(file).map_err(|e| refused(&e))? {
        roots.add(certificate.map_err(|e| refused(&e))?).map_err(|e| refused(&e))?;
    }
    Ok(roots)
}

/// `sha256:` and the hex digest of a certificate, as `--pin-sha256` takes it.
fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(certificate.as_ref())))
}

/// What makes a server certificate acceptable.
#[derive(Debug)]
enum Trusted {
    /// A chain to one of these roots, for the server's name.
    Roots(Arc<WebPkiServerVerifier>),
    /// Exactly this certificate (self-signed servers); the handshake
    /// signatures are still checked.
    Pin([u8; 32]),
}

/// The one server-certificate check of every FTPS connection.
#[derive(Debug)]
struct ServerCheck {
    trusted: Trusted,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match &self.trusted {
            Trusted::Roots(webpki) => {
                webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now).map_err(|e| {
                    rustls::Error::General(format!("server certificate {} refused: {e}", fingerprint(end_entity)))
                })
            }
            Trusted::Pin(pin) => {
                let actual: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if actual == *pin {
                    return Ok(ServerCertVerified::assertion());
                }
                Err(rustls::Error::General(format!(
                    "server certificate {} does not match the pinned sha256:{}",
                    fingerprint(end_entity),
                    hex::encode(pin)
                )))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
