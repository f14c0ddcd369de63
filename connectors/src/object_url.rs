//! Object stores from URLs: `file:///dir`, `memory://`, `s3://bucket/prefix`, `gs://...`,
//! `az://...`. Credentials and settings come from the environment (`AWS_*`, `GOOGLE_*`,
//! `AZURE_*`, as each cloud's tools use them) and from the URL's query, whose keys are the
//! store's configuration keys (`s3://bucket?endpoint=http://127.0.0.1:9000&region=eu-west-1`);
//! an unknown key is an error, not silently ignored.

use std::str::FromStr;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path;
use url::Url;

use crate::error::{ConnectorError, Result};

fn invalid(url: &str, reason: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::ObjectStore {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// The store a URL names and the path inside it.
pub fn object_store_for(text: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let mut url = Url::parse(text).map_err(|e| invalid(text, e))?;
    let query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    let path = Path::from_url_path(url.path()).map_err(|e| invalid(text, e))?;
    let unknown = |key: &str| {
        invalid(
            text,
            format!("unknown option '{key}' for {} URLs", url.scheme()),
        )
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
            for (key, value) in &query {
                let config = AmazonS3ConfigKey::from_str(key).map_err(|_| unknown(key))?;
                // A plain-HTTP endpoint (a local S3 such as MinIO or moto) needs allow_http.
                if config == AmazonS3ConfigKey::Endpoint && value.starts_with("http://") {
                    builder = builder.with_allow_http(true);
                }
                builder = builder.with_config(config, value);
            }
            Arc::new(builder.build().map_err(|e| invalid(text, e))?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
            for (key, value) in &query {
                let config = GoogleConfigKey::from_str(key).map_err(|_| unknown(key))?;
                builder = builder.with_config(config, value);
            }
            Arc::new(builder.build().map_err(|e| invalid(text, e))?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            for (key, value) in &query {
                let config = AzureConfigKey::from_str(key).map_err(|_| unknown(key))?;
                builder = builder.with_config(config, value);
            }
            Arc::new(builder.build().map_err(|e| invalid(text, e))?)
        }
        _ => {
            if let Some((key, _)) = query.first() {
                return Err(unknown(key));
            }
            let (store, path) = object_store::parse_url(&url).map_err(|e| invalid(text, e))?;
            return Ok((Arc::from(store), path));
        }
    };
    // Cloud URLs name the bucket in the host; the path is the prefix inside it.
    Ok((store, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keys_configure_the_store_and_unknown_ones_are_refused() {
        let (_, path) = object_store_for(
            "s3://bucket/checkpoints/jobs?endpoint=http://127.0.0.1:9&region=us-east-1&access_key_id=a&secret_access_key=b",
        )
        .expect("valid s3 URL");
        assert_eq!(path.as_ref(), "checkpoints/jobs");
        let err = object_store_for("s3://bucket?endpiont=http://x").expect_err("typo");
        assert!(
            err.to_string().contains("unknown option 'endpiont'"),
            "{err}"
        );
        let err = object_store_for("memory:///?x=1").expect_err("no options");
        assert!(err.to_string().contains("unknown option 'x'"), "{err}");
        assert!(object_store_for("memory:///").is_ok());
    }
}
