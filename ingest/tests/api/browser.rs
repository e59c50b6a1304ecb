//! Headless Chromium, driven through WebDriver: Debian's `chromium` and `chromium-driver`
//! (`.ci/run` installs them), one `chromedriver` per test on a port of its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::support::free_port;

/// The browser's window: a wall screen's proportions at a size a test can look at.
const WINDOW: (u32, u32) = (1600, 1000);

pub struct Browser {
    pub client: Client,
    driver: Child,
    port: u16,
    /// The WebDriver session, ended on drop when the test did not close it.
    session: Option<String>,
}

/// One message of the browser's console.
#[derive(Debug, Clone)]
pub struct ConsoleEntry {
    pub level: String,
    pub message: String,
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium session with its console recorded.
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new(std::env::var("CHROMEDRIVER").unwrap_or("chromedriver".into()))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (the suite needs Debian's chromium and chromium-driver)");
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--force-device-scale-factor=1",
                format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            ],
        });
        if let Ok(binary) = std::env::var("CHROMIUM") {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let started = Instant::now();
        let client = loop {
            let connected = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match connected {
                Ok(client) => break client,
                Err(e) if started.elapsed() > Duration::from_secs(20) => {
                    panic!("no WebDriver session on port {port}: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let session = client.session_id().await.ok().flatten();
        Self {
            client,
            driver,
            port,
            session,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns `true`; false when `within` ran out first.
    pub async fn until(&self, within: Duration, script: &str, args: Vec<Value>) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.eval(script, args.clone()).await == Value::Bool(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matches `selector`.
    pub async fn wait_for(&self, selector: &str, within: Duration) {
        assert!(
            self.until(
                within,
                "return document.querySelector(arguments[0]) !== null",
                vec![json!(selector)],
            )
            .await,
            "nothing matches {selector} within {within:?}"
        );
    }

    /// Focuses the element `selector` matches and presses Enter on it, as a keyboard user would.
    pub async fn press_enter_on(&self, selector: &str) {
        let focused = self
            .eval(
                "const e = document.querySelector(arguments[0]); e?.focus();
                 return e !== null && document.activeElement === e",
                vec![json!(selector)],
            )
            .await;
        assert_eq!(focused, json!(true), "{selector} cannot take the focus");
        self.client
            .active_element()
            .await
            .expect("the focused element")
            .send_keys("\u{E007}")
            .await
            .expect("Enter is pressed");
    }

    /// The console's messages since the last call (Chromium's log, read through the driver).
    pub async fn console(&self) -> Vec<ConsoleEntry> {
        let session = self.session.as_deref().expect("an open session");
        let url = format!("http://127.0.0.1:{}/session/{session}/se/log", self.port);
        let answer: Value = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .expect("the driver answers")
            .json()
            .await
            .expect("JSON");
        answer["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|entry| ConsoleEntry {
                level: entry["level"].as_str().unwrap_or("").to_owned(),
                message: entry["message"].as_str().unwrap_or("").to_owned(),
            })
            .collect()
    }

    /// Asserts the console holds no error, but those `expected` names a part of.
    pub async fn assert_no_console_errors(&self, expected: &[&str]) {
        let errors: Vec<ConsoleEntry> = self
            .console()
            .await
            .into_iter()
            .filter(|e| e.level == "SEVERE")
            .filter(|e| !expected.iter().any(|part| e.message.contains(part)))
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:#?}");
    }

    /// Saves a screenshot of the window as `name.png` in the tests' screenshot folder (and in
    /// `DASHBOARD_SCREENSHOTS` when set); returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let folder = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&folder).expect("the screenshot folder");
        let path = folder.join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("the screenshot is saved");
        if let Ok(extra) = std::env::var("DASHBOARD_SCREENSHOTS") {
            std::fs::write(PathBuf::from(extra).join(format!("{name}.png")), &png)
                .expect("the screenshot is copied");
        }
        path
    }

    /// Ends the session (the browser quits); the driver stops on drop.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.session = None;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed before closing its session: ask the driver to end it, so the
        // browser quits instead of outliving the killed driver.
        if let Some(session) = self.session.take() {
            end_session(self.port, &session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{session}` to the driver on `port`, blocking (drop cannot await), for at
/// most a few seconds.
fn end_session(port: u16, session: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read_to_end(&mut Vec::new());
    }
}
