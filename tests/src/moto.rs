//! moto's S3 server on a loopback port: stands in for S3 (real S3 speaks the same REST API;
//! moto accepts any credentials).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, repo_root};

/// A moto S3 server, stopped when dropped.
pub struct MotoS3 {
    child: Child,
    endpoint: String,
}

impl MotoS3 {
    /// Starts moto and creates `bucket`.
    pub async fn start(bucket: &str) -> MotoS3 {
        let binary = repo_root().join(".venv/bin/moto_server");
        assert!(
            binary.is_file(),
            "{} not found: run ./scripts/setup.sh first",
            binary.display()
        );
        let port = magnetar_connectors::pulsar::lite::free_port().expect("a free port");
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut moto = MotoS3 { child, endpoint };
        eventually("moto to answer", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", moto.endpoint))
            .send()
            .await
            .expect("create the bucket");
        assert!(created.status().is_success(), "create bucket: {created:?}");
        assert!(moto.child.try_wait().expect("moto status").is_none());
        moto
    }

    /// `s3://bucket/prefix?endpoint=...` with moto's endpoint and dummy credentials.
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&region=us-east-1&access_key_id=test&secret_access_key=test",
            self.endpoint
        )
    }
}

impl Drop for MotoS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
