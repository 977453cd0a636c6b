//! Reading a certificate chain and its private key from PEM files into what
//! rustls serves, with errors that say which file is wrong and how.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Where a certificate chain and its key live (`[tls] cert` and `key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM certificates, the server's first (a `fullchain.pem`).
    pub cert: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (ECDSA).
    pub key: PathBuf,
}

/// Every certificate `[tls]` names: the default pair, and pairs served to
/// clients that ask for one of their names (SNI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub default: CertFiles,
    pub sni: Vec<SniFiles>,
}

/// A pair served by name (`[[tls.sni]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniFiles {
    /// Lower-case host names; `*.example.org` stands for any one label.
    pub names: Vec<String>,
    pub files: CertFiles,
}

impl TlsFiles {
    /// Just one pair, served to everyone.
    pub fn single(files: CertFiles) -> TlsFiles {
        TlsFiles { default: files, sni: Vec::new() }
    }

    /// Every pair, the default first.
    pub fn pairs(&self) -> impl Iterator<Item = &CertFiles> {
        std::iter::once(&self.default).chain(self.sni.iter().map(|s| &s.files))
    }
}

/// Does `pattern` (a configured name) cover the host name `name`?
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => name
            .strip_suffix(parent)
            .and_then(|label| label.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => pattern == name,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: cannot read: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no usable private key: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{cert} and {key} do not go together: {reason}")]
    Mismatch { cert: PathBuf, key: PathBuf, reason: String },
}

impl CertFiles {
    /// Load and check the pair: every certificate parses, the key is one
    /// ring can sign with (RSA or ECDSA), and it belongs to the first
    /// certificate.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, CertError> {
        let chain = read_chain(&self.cert)?;
        let key = read_key(&self.key)?;
        CertifiedKey::from_der(chain, key, &default_provider()).map(Arc::new).map_err(|error| CertError::Mismatch {
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason: error.to_string(),
        })
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CertError::Read { path: path.into(), reason: error.to_string() })?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate { path: path.into() });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| CertError::Key { path: path.into(), reason: error.to_string() })
}

/// PEM files are small; anything past this is not one.
const MAX_PEM: u64 = 1 << 20;

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    let fail = |reason: String| CertError::Read { path: path.into(), reason };
    let len = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?.len();
    if len > MAX_PEM {
        return Err(fail(format!("{len} bytes is too large for a PEM file")));
    }
    std::fs::read(path).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn names_match_exactly_or_by_one_wildcard_label() {
        assert!(name_matches("radio.example.org", "radio.example.org"));
        assert!(!name_matches("radio.example.org", "www.radio.example.org"));
        assert!(name_matches("*.example.org", "radio.example.org"));
        assert!(!name_matches("*.example.org", "example.org"));
        assert!(!name_matches("*.example.org", "a.b.example.org"));
        assert!(!name_matches("*.example.org", "radioexample.org"));
    }
}
