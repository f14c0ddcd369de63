//! Pulsar's admin REST API as the table's client sees it: one HTTP client with the table's
//! TLS trust and token (a bearer token, as Pulsar's admin API takes it), and the namespace
//! topic list that topic patterns are resolved with.

use std::time::Duration;

use crate::error::{ConnectorError, Result};
use crate::pulsar::{Authentication, ClientSecurity};

/// How long one admin request may take (redirects to the owner broker included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP client for the admin API at `admin_url` (`http://` or `https://`).
pub(crate) fn http_client(
    admin_url: &reqwest::Url,
    security: &ClientSecurity,
) -> std::result::Result<reqwest::Client, String> {
    if !matches!(admin_url.scheme(), "http" | "https") {
        return Err("expected http:// or https://".into());
    }
    let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
    if admin_url.scheme() == "https" {
        let tls = security.tls.client_config().map_err(|e| e.to_string())?;
        builder = builder.use_preconfigured_tls((*tls).clone());
    }
    builder.build().map_err(|e| e.to_string())
}

/// `request` with the credentials of `auth` (tokens only; a client certificate is part of the
/// TLS connection).
pub(crate) async fn authorize(
    request: reqwest::RequestBuilder,
    auth: Option<&Authentication>,
) -> Result<reqwest::RequestBuilder> {
    match auth {
        Some(auth) if auth.method() == "token" => {
            let token = auth.data().await?;
            Ok(request.bearer_auth(String::from_utf8_lossy(&token)))
        }
        _ => Ok(request),
    }
}

/// `GET url` with `auth`: `None` for 404, the body for a success, an error (with the URL, the
/// status and the body) otherwise.
pub(crate) async fn get_text(
    http: &reqwest::Client,
    url: &reqwest::Url,
    auth: Option<&Authentication>,
) -> std::result::Result<Option<String>, String> {
    let response = authorize(http.get(url.clone()), auth)
        .await
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}: {}", body.trim()));
    }
    Ok(Some(body))
}

/// The topics of `namespace` (`tenant/namespace`), full names with partitions, from
/// `GET /admin/v2/namespaces/{tenant}/{namespace}/topics`.
pub async fn namespace_topics(
    admin_url: &str,
    security: &ClientSecurity,
    namespace: &str,
) -> Result<Vec<String>> {
    let failed = |reason: String| ConnectorError::Admin {
        url: crate::redact::url(admin_url),
        reason: crate::redact::text(&format!(
            "cannot list the topics of namespace '{namespace}': {reason}"
        )),
    };
    let mut url = reqwest::Url::parse(admin_url)
        .map_err(|e| failed(format!("invalid admin URL '{admin_url}': {e}")))?;
    let http = http_client(&url, security).map_err(failed)?;
    {
        let (tenant, ns) = namespace
            .split_once('/')
            .ok_or_else(|| failed("expected tenant/namespace".into()))?;
        let mut segments = url
            .path_segments_mut()
            .map_err(|()| failed("the admin URL cannot take a path".into()))?;
        segments.pop_if_empty();
        segments.extend(["admin", "v2", "namespaces", tenant, ns, "topics"]);
    }
    let body = get_text(&http, &url, security.auth.as_ref())
        .await
        .map_err(failed)?
        .ok_or_else(|| failed(format!("GET {url}: HTTP 404: no such namespace")))?;
    serde_json::from_str::<Vec<String>>(&body).map_err(|e| {
        failed(format!(
            "GET {url}: expected a JSON list of topic names: {e}"
        ))
    })
}
