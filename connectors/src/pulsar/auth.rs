//! Credentials sent with CONNECT, as Pulsar's client authentication plugins send them.
//! Their values never reach a `Debug` or `Display`.

use std::path::PathBuf;

use super::oauth2::OAuth2Settings;
use crate::error::{ConnectorError, Result};

/// How a connection authenticates (the `auth_method_name` and `auth_data` of CONNECT).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// A token (`AuthenticationToken` with `token:...`): method `token`, the token as data.
    Token(String),
    /// A token read from a file at every connect, so a rotated token is picked up
    /// (`AuthenticationToken` with `file:...`).
    TokenFile(PathBuf),
    /// OAuth2 client credentials (`AuthenticationOAuth2`): the granted access token goes as a
    /// token, fetched again when it expires.
    OAuth2(OAuth2Settings),
    /// Another method with fixed data (tests, custom plugins).
    Other {
        /// The method name.
        method: String,
        /// The credentials.
        data: Vec<u8>,
    },
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authentication::Token(_) => f.write_str("Token(******)"),
            Authentication::TokenFile(path) => write!(f, "TokenFile({})", path.display()),
            Authentication::OAuth2(o) => write!(f, "OAuth2({})", o.issuer_url),
            Authentication::Other { method, .. } => write!(f, "Other({method}, ******)"),
        }
    }
}

impl Authentication {
    /// The method name CONNECT carries.
    pub fn method(&self) -> &str {
        match self {
            Authentication::Token(_) | Authentication::TokenFile(_) | Authentication::OAuth2(_) => {
                "token"
            }
            Authentication::Other { method, .. } => method,
        }
    }

    /// The credentials CONNECT carries, read (or fetched) now.
    pub async fn data(&self) -> Result<Vec<u8>> {
        match self {
            Authentication::OAuth2(o) => Ok(o.token().await?.into_bytes()),
            Authentication::Token(token) => Ok(token.as_bytes().to_vec()),
            Authentication::TokenFile(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| ConnectorError::Authentication {
                        address: String::new(),
                        reason: format!("cannot read the token file '{}': {e}", path.display()),
                    })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(ConnectorError::Authentication {
                        address: String::new(),
                        reason: format!("the token file '{}' is empty", path.display()),
                    });
                }
                Ok(token.as_bytes().to_vec())
            }
            Authentication::Other { data, .. } => Ok(data.clone()),
        }
    }

    /// The same credentials for pulsar-rs (the sink's producer), read at each of its connects.
    pub fn to_pulsar_rs(&self) -> Box<dyn pulsar::authentication::Authentication> {
        Box::new(ForPulsarRs(self.clone()))
    }
}

/// [`Authentication`] as pulsar-rs's provider trait.
struct ForPulsarRs(Authentication);

#[async_trait::async_trait]
impl pulsar::authentication::Authentication for ForPulsarRs {
    fn auth_method_name(&self) -> String {
        self.0.method().to_string()
    }

    async fn initialize(&mut self) -> std::result::Result<(), pulsar::error::AuthenticationError> {
        Ok(())
    }

    async fn auth_data(
        &mut self,
    ) -> std::result::Result<Vec<u8>, pulsar::error::AuthenticationError> {
        self.0
            .data()
            .await
            .map_err(|e| pulsar::error::AuthenticationError::Custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_credentials() {
        let shown = format!(
            "{:?} {:?}",
            Authentication::Token("s3cr3t-token".into()),
            Authentication::Other {
                method: "basic".into(),
                data: b"s3cr3t".to_vec()
            }
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[tokio::test]
    async fn a_token_file_is_read_at_each_use() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").expect("write");
        let auth = Authentication::TokenFile(path.clone());
        assert_eq!(auth.data().await.expect("read"), b"first");
        std::fs::write(&path, "second").expect("write");
        assert_eq!(auth.data().await.expect("read"), b"second");
        std::fs::write(&path, " \n").expect("write");
        assert!(
            auth.data()
                .await
                .expect_err("empty")
                .to_string()
                .contains("empty")
        );
    }
}
