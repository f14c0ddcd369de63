//! OAuth2 client credentials, as Pulsar's `AuthenticationOAuth2` plugin gets them: the
//! credentials file (`privateKey`) names the client, the issuer's OpenID configuration
//! names the token endpoint, and the access token it grants goes to the broker as a token.
//! Tokens are kept until shortly before they expire, then fetched again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::error::{ConnectorError, Result};

/// A token is fetched again this long before it expires.
const EARLY_REFRESH: Duration = Duration::from_secs(10);

/// The `issuerUrl`, `privateKey`, `audience` and `scope` parameters of the plugin.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OAuth2Settings {
    /// The issuer (`https://auth.example.com/`); its `.well-known/openid-configuration`
    /// names the token endpoint.
    pub issuer_url: String,
    /// The credentials file: JSON with `client_id` and `client_secret`.
    pub credentials_file: PathBuf,
    /// The audience asked for.
    pub audience: Option<String>,
    /// The scope asked for.
    pub scope: Option<String>,
}

/// Tokens granted so far, by settings: shared by every connection of the process.
static TOKENS: LazyLock<Mutex<HashMap<OAuth2Settings, (String, Instant)>>> =
    LazyLock::new(Default::default);

fn failed(reason: String) -> ConnectorError {
    ConnectorError::Authentication {
        address: String::new(),
        reason: format!("OAuth2: {}", crate::redact::text(&reason)),
    }
}

impl OAuth2Settings {
    /// An access token: the one granted before if it is still good, else a new one.
    pub async fn token(&self) -> Result<String> {
        if let Some((token, until)) = TOKENS.lock().unwrap_or_else(|p| p.into_inner()).get(self)
            && Instant::now() + EARLY_REFRESH < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        TOKENS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.clone(), (token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Asks the token endpoint, trying again a few times while it is unavailable.
    async fn fetch(&self) -> Result<(String, Duration)> {
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self.fetch_once().await {
                Err(Fetch::Unavailable(reason)) if attempt < FETCH_ATTEMPTS => {
                    tracing::warn!(
                        issuer = %crate::redact::url(&self.issuer_url),
                        reason = %crate::redact::text(&reason),
                        attempt,
                        "OAuth2 token endpoint unavailable; trying again"
                    );
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(Fetch::Unavailable(reason)) => {
                    return Err(ConnectorError::TokenEndpointUnavailable {
                        issuer: self.issuer_url.clone(),
                        reason: format!("{reason} (tried {attempt} times)"),
                    });
                }
                Err(Fetch::Refused(reason)) => return Err(failed(reason)),
                Ok(granted) => return Ok(granted),
            }
        }
    }

    async fn fetch_once(&self) -> std::result::Result<(String, Duration), Fetch> {
        let file = self.credentials_file.display();
        let text = std::fs::read_to_string(&self.credentials_file).map_err(|e| {
            Fetch::Refused(format!("cannot read the credentials file '{file}': {e}"))
        })?;
        let credentials: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Fetch::Refused(format!("the credentials file '{file}' is not JSON: {e}"))
        })?;
        let field = |name: &str| {
            credentials[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    Fetch::Refused(format!("the credentials file '{file}' has no '{name}'"))
                })
        };
        let (client_id, client_secret) = (field("client_id")?, field("client_secret")?);
        let http = reqwest::Client::builder()
            .timeout(crate::admin::REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Fetch::Refused(e.to_string()))?;
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            self.issuer_url.trim_end_matches('/')
        );
        let response = http
            .get(&discovery)
            .send()
            .await
            .map_err(|e| Fetch::Unavailable(format!("GET {discovery}: {e}")))?;
        let status = response.status();
        if Fetch::is_trouble(status) {
            return Err(Fetch::Unavailable(format!(
                "GET {discovery}: HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(Fetch::Refused(format!("GET {discovery}: HTTP {status}")));
        }
        let text = response
            .text()
            .await
            .map_err(|e| Fetch::Unavailable(format!("GET {discovery}: {e}")))?;
        let configuration: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Fetch::Refused(format!("GET {discovery}: not JSON: {e}")))?;
        let endpoint = configuration["token_endpoint"]
            .as_str()
            .ok_or_else(|| Fetch::Refused(format!("{discovery} names no token_endpoint")))?;
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ];
        if let Some(a) = &self.audience {
            form.push(("audience", a.clone()));
        }
        if let Some(s) = &self.scope {
            form.push(("scope", s.clone()));
        }
        let response = http
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| Fetch::Unavailable(format!("POST {endpoint}: {e}")))?;
        let status = response.status();
        if Fetch::is_trouble(status) {
            return Err(Fetch::Unavailable(format!(
                "POST {endpoint}: HTTP {status}"
            )));
        }
        let text = response
            .text()
            .await
            .map_err(|e| Fetch::Unavailable(format!("POST {endpoint}: {e}")))?;
        let body: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Fetch::Refused(format!("POST {endpoint}: not JSON: {e}")))?;
        if !status.is_success() {
            return Err(Fetch::Refused(format!(
                "the token endpoint refused the client credentials (HTTP {status}: {})",
                body["error"].as_str().unwrap_or("no reason given")
            )));
        }
        let token = body["access_token"].as_str().ok_or_else(|| {
            Fetch::Refused(format!("POST {endpoint}: no access_token in the answer"))
        })?;
        // At most a day: the number comes from the network.
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600).min(86_400));
        Ok((token.to_string(), lifetime))
    }
}

/// Times the token endpoint is asked before it counts as unavailable.
const FETCH_ATTEMPTS: u32 = 4;

/// Why a token was not granted.
enum Fetch {
    /// A verdict: wrong credentials, a bad answer. Asking again gets the same.
    Refused(String),
    /// Network trouble or a server error: no verdict yet.
    Unavailable(String),
}

impl Fetch {
    /// Answers that say the server has trouble, not that we are wrong.
    fn is_trouble(status: reqwest::StatusCode) -> bool {
        status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    }
}
