//! End-to-end, PostgreSQL only: secrets never reach the output. Both binaries run at
//! `RUST_LOG=trace` with API keys, a classifier token, a database password and a Redis
//! password set; the test exercises every path that handles them — keyed writes and reads, a
//! refused key and a refused classifier token (whose answers must not echo them either), the
//! classifier link over Streamable HTTP with its bearer token, the database pool, Redis (rate
//! limits, cache, stream fan-out), and the `ingest maintain` command — and then reads every
//! line either process wrote. (JWT access tokens: `mcp-classifier/tests/mcp_oauth.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use smart_traffic_e2e::{
    Classifier, Ingest, RedisServer, TestDatabase, binaries, eventually, free_port, reading,
};

const KEY_A: &str = "ingest-key-7c1d5a0e";
const KEY_B: &str = "ingest-key-90be3f12";
const TOKEN: &str = "mcp-token-4e8a21d9";
const PASSWORD: &str = "db-password-b62f0c77";
const REDIS_PASSWORD: &str = "redis-password-0d93ea51";
/// A wrong key and a wrong token, which must not be echoed either.
const WRONG_KEY: &str = "wrong-key-5a7f3c20";
const WRONG_TOKEN: &str = "wrong-token-c81e6b94";

/// `postgres://user@host/db` with `PASSWORD` added (the test server trusts local connections,
/// so the password is carried everywhere but never checked).
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, host) = rest.split_once('@').expect("a user in TEST_DATABASE_URL");
    let user = user.split(':').next().unwrap_or(user);
    format!("{scheme}://{user}:{PASSWORD}@{host}")
}

/// Every line of `log` that holds `secret`, for the failure message.
fn lines_with<'a>(log: &'a str, secret: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(secret)).take(5).collect()
}

/// Asserts that `response` is a `401` whose headers and body do not hold `wrong`.
async fn refused_without_echo(response: reqwest::Response, wrong: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let headers = format!("{:?}", response.headers());
    let answer = format!("{headers} {}", response.text().await.unwrap());
    assert!(
        !answer.contains(wrong),
        "the refusal echoes {wrong}: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_the_output_of_either_binary_even_at_trace_level() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let database_url = with_password(&db.database_url());
    let classifier = Classifier::serve(
        free_port(),
        &[
            ("RUST_LOG", "trace"),
            ("MCP_AUTH_TOKEN", TOKEN),
            ("DATABASE_URL", &database_url),
        ],
    );
    let redis = RedisServer::start_with_password(REDIS_PASSWORD).await;
    let redis_url = redis.url();
    let keys = format!("{KEY_A},{KEY_B}");
    let mcp_url = classifier.mcp_url();
    let ingest = Ingest::start(
        "ingest",
        &db,
        &[
            ("RUST_LOG", "trace"),
            ("DATABASE_URL", &database_url),
            ("INGEST_API_KEYS", &keys),
            ("INGEST_READ_KEYS_REQUIRED", "true"),
            ("MCP_URL", &mcp_url),
            ("MCP_AUTH_TOKEN", TOKEN),
            ("REDIS_URL", &redis_url),
            ("INGEST_RATE_LIMIT", "1000"),
        ],
    )
    .await;

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let created = http
        .post(ingest.url("/v1/events"))
        .bearer_auth(KEY_A)
        .json(&reading("secret-s1", 0))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let batch = http
        .post(ingest.url("/v1/events/batch"))
        .header("x-api-key", KEY_B)
        .json(&[reading("secret-s1", 1), reading("secret-s2", 1)])
        .send()
        .await
        .unwrap();
    assert_eq!(batch.status(), StatusCode::OK);
    let refused = http
        .get(ingest.url("/v1/events"))
        .bearer_auth(WRONG_KEY)
        .send()
        .await
        .unwrap();
    refused_without_echo(refused, WRONG_KEY).await;
    let refused = http
        .post(&mcp_url)
        .bearer_auth(WRONG_TOKEN)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    refused_without_echo(refused, WRONG_TOKEN).await;
    // A cached read goes through Redis.
    let read = http
        .get(ingest.url("/v1/sensors"))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);

    // The workers reach the classifier over HTTP with the token; the classification proves it.
    let url = ingest.url(&format!("/v1/events/{id}"));
    eventually("the reading is classified", Duration::from_secs(30), || {
        let request = http.get(&url).bearer_auth(KEY_B);
        async move {
            let response = request.send().await.map_err(|e| e.to_string())?;
            let event: Value = response.json().await.map_err(|e| e.to_string())?;
            if event["status"] == "classified" {
                Ok(())
            } else {
                Err(event.to_string())
            }
        }
    })
    .await;

    // The maintenance command, run by hand or by a scheduler, with the same settings.
    let maintain = std::process::Command::new(&binaries().ingest)
        .arg("maintain")
        .env("RUST_LOG", "trace")
        .env("DATABASE_URL", &database_url)
        .env("REDIS_URL", &redis_url)
        .env("INGEST_API_KEYS", &keys)
        .output()
        .unwrap();
    assert!(maintain.status.success(), "{maintain:?}");
    let maintain = format!(
        "{}{}",
        String::from_utf8_lossy(&maintain.stdout),
        String::from_utf8_lossy(&maintain.stderr)
    );

    let logs = [ingest.proc().log(), classifier.proc().log(), maintain];
    for (name, log) in ["ingest", "mcp-classifier", "ingest maintain"]
        .iter()
        .zip(&logs)
    {
        // Trace level really was on: the libraries' own trace events are there.
        assert!(
            log.contains("TRACE"),
            "{name} wrote no trace events; its log:\n{log}"
        );
        for secret in [
            KEY_A,
            KEY_B,
            TOKEN,
            PASSWORD,
            REDIS_PASSWORD,
            WRONG_KEY,
            WRONG_TOKEN,
        ] {
            assert!(
                !log.contains(secret),
                "{name} wrote the secret {secret}:\n{:#?}",
                lines_with(log, secret)
            );
        }
    }
}
