//! The dashboard in a real browser (headless Chromium through WebDriver): live markers, rows and
//! timeline, the sensor's chart, the key prompt, a map without tiles, the API reference offline,
//! and the script time of an update with a thousand sensors. Screenshots of each view are saved
//! in the tests' screenshot folder.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use traffic_store::StoreConfig;

use crate::browser::Browser;
use crate::support::{
    Backend, TestApp, TestDb, free_port, lane_reading as reading, send, settings, with_classifier,
};

/// The service with its classifier, drawing the map on a plain background (`tiles`: none) or
/// with tiles from `tiles`.
async fn dashboard_app(backend: Backend, tiles: &str, keys: Option<&str>) -> TestApp {
    let db = TestDb::new(backend).await;
    let mut s = settings(StoreConfig::new(db.url().clone()));
    with_classifier(&mut s);
    s.dashboard.tiles_url = tiles.to_owned();
    if let Some(key) = keys {
        s.api_keys = ingest::auth::ApiKeys::new(vec![key.into()], true);
    }
    TestApp::start(s, Some(db)).await
}

/// Registers `sensor` on the A9 at a place near Munich, `k` hundredths of a degree apart.
async fn register(app: &TestApp, sensor: &str, k: u32, key: Option<&str>) {
    let metadata = json!({
        "road": "A9", "name": format!("A9 km {k}"), "lanes": 3,
        "location": {"lat": 48.2 + f64::from(k) * 0.01, "lon": 11.6 + f64::from(k) * 0.005},
    });
    let mut request = app
        .request(reqwest::Method::PUT, &format!("/v1/sensors/{sensor}"))
        .json(&metadata);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    assert!(send(request).await.status().is_success());
}

async fn post(app: &TestApp, readings: &[Value], key: Option<&str>) {
    let mut request = app.post("/v1/events/batch").json(&readings);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = send(request).await;
    assert_eq!(response.status().as_u16(), 200);
}

/// Waits until every event is classified.
async fn classified(app: &TestApp, key: Option<&str>) {
    let started = Instant::now();
    loop {
        let mut request = app.get("/v1/events?status=pending&limit=1");
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let page: Value = send(request).await.json().await.unwrap();
        if page["items"].as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const READY: &str = "return document.body.dataset.ready === 'true'";

/// A browser on `app`'s dashboard, once it has loaded (within `within`).
async fn open_dashboard(app: &TestApp, within: Duration) -> Browser {
    let browser = Browser::start().await;
    browser.goto(&app.url("/")).await;
    assert!(
        browser.until(within, READY, vec![]).await,
        "the dashboard did not load"
    );
    browser
}

/// Whether `sensor`'s marker and table row show `label` within `within`.
async fn shown_as(browser: &Browser, sensor: &str, label: &str, within: Duration) -> bool {
    browser
        .until(within, SHOWN_AS, vec![json!(sensor), json!(label)])
        .await
}

/// Whether the marker and the table row of `arguments[0]` both show label `arguments[1]`.
const SHOWN_AS: &str = "
    const [sensor, label] = arguments;
    const marker = document.querySelector(`#map [data-sensor=\"${sensor}\"]`);
    const row = document.querySelector(`#sensor-table tbody tr[data-sensor=\"${sensor}\"]`);
    return marker?.dataset.label === label && row?.dataset.label === label;";

pub async fn a_jam_turns_the_marker_and_row_congested_live_and_the_sensor_page_charts_it(
    backend: Backend,
) {
    let app = dashboard_app(backend, "", None).await;
    register(&app, "S1", 1, None).await;
    register(&app, "S2", 2, None).await;
    let t0 = Utc::now() - TimeDelta::minutes(30);
    let free: Vec<Value> = (0..20)
        .flat_map(|k| {
            let at = t0 + TimeDelta::minutes(k);
            [reading("S1", at, false), reading("S2", at, false)]
        })
        .collect();
    post(&app, &free, None).await;
    classified(&app, None).await;

    let browser = open_dashboard(&app, Duration::from_secs(10)).await;
    assert!(shown_as(&browser, "S1", "free_flow", Duration::from_secs(5)).await);
    // The first load's transfer, as the browser counted it (compressed bytes on the wire).
    let transfer = browser
        .eval(
            "const entries = [...performance.getEntriesByType('navigation'),
                              ...performance.getEntriesByType('resource')];
             return entries.filter(e => e.name.includes('/ui/') || e.entryType === 'navigation')
                           .reduce((sum, e) => sum + e.transferSize, 0);",
            vec![],
        )
        .await
        .as_f64()
        .unwrap();
    assert!(
        transfer > 10_000.0 && transfer < 600.0 * 1024.0,
        "first load transferred {transfer} bytes"
    );
    browser.screenshot("dashboard-before").await;

    // A jam: the marker and the row turn congested without a reload, within 2 s.
    let jam_at = Utc::now() - TimeDelta::seconds(30);
    let posted = Instant::now();
    post(&app, &[reading("S1", jam_at, true)], None).await;
    assert!(
        shown_as(&browser, "S1", "congested", Duration::from_secs(2)).await,
        "S1 not shown congested 2 s after its reading"
    );
    let shown_after = posted.elapsed();
    // The transition reaches the timeline, newest first.
    browser
        .wait_for(
            "#timeline li[data-sensor=\"S1\"][data-to-label=\"congested\"]",
            Duration::from_secs(2),
        )
        .await;
    let first = browser
        .eval(
            "return document.querySelector('#timeline li')?.dataset.sensor",
            vec![],
        )
        .await;
    assert_eq!(first, "S1", "the newest transition comes first");
    // S2 is untouched.
    assert!(shown_as(&browser, "S2", "free_flow", Duration::from_secs(1)).await);
    browser.screenshot("dashboard").await;

    // The table filters: by label, by road, by staleness (S2's last reading is 11 minutes old).
    let visible_after = |field: &'static str, value: &'static str| {
        let browser = &browser;
        async move {
            browser
                .eval(
                    "const [field, value] = arguments;
                     const form = document.querySelector('#filters');
                     form.reset();
                     const input = form.elements[field];
                     if (input.type === 'checkbox') input.checked = value === 'true';
                     else input.value = value;
                     input.dispatchEvent(new Event('change', {bubbles: true}));
                     return [...document.querySelectorAll('#sensor-table tbody tr')]
                         .filter(r => !r.hidden).map(r => r.dataset.sensor).sort();",
                    vec![json!(field), json!(value)],
                )
                .await
        }
    };
    assert_eq!(visible_after("label", "congested").await, json!(["S1"]));
    assert_eq!(visible_after("los", "A").await, json!(["S2"]));
    assert_eq!(visible_after("road", "A9").await, json!(["S1", "S2"]));
    assert_eq!(visible_after("stale", "stale").await, json!(["S2"]));
    assert_eq!(visible_after("flagged", "true").await, json!(["S1", "S2"]));
    assert_eq!(visible_after("q", "2").await, json!(["S2"]));
    browser
        .eval(
            "document.querySelector('#filters').reset(); return true",
            vec![],
        )
        .await;

    // The sensor's page: its day as a chart with every posted bucket.
    browser.goto(&app.url("/#/sensors/S1")).await;
    browser
        .wait_for(
            "#sensor-page[data-sensor=\"S1\"] #series-chart[data-loaded=\"true\"]",
            Duration::from_secs(10),
        )
        .await;
    let points = browser
        .eval(
            "return Number(document.querySelector('#series-chart').dataset.points)",
            vec![],
        )
        .await;
    // 21 readings over 30 minutes: their 5-minute buckets.
    let buckets = {
        let mut starts: Vec<i64> = (0..20)
            .map(|k| (t0 + TimeDelta::minutes(k) - TimeDelta::minutes(1)).timestamp() / 300)
            .collect();
        starts.push((jam_at - TimeDelta::minutes(1)).timestamp() / 300);
        starts.dedup();
        starts.len()
    };
    assert_eq!(points, json!(buckets), "buckets with readings on the chart");
    let text = browser
        .eval(
            "return document.querySelector('#sensor-page').innerText",
            vec![],
        )
        .await;
    assert!(text.as_str().unwrap().contains("A9"), "{text}");
    browser.screenshot("sensor").await;
    // A week, in hours: the chart is drawn again from hourly buckets.
    let hours = {
        let mut starts: Vec<i64> = (0..20)
            .map(|k| (t0 + TimeDelta::minutes(k) - TimeDelta::minutes(1)).timestamp() / 3600)
            .collect();
        starts.push((jam_at - TimeDelta::minutes(1)).timestamp() / 3600);
        starts.dedup();
        starts.len()
    };
    browser
        .eval(
            "const week = document.querySelector('#window-picker input[value=\"7d\"]');
             week.click();
             return true",
            vec![],
        )
        .await;
    assert!(
        browser
            .until(
                Duration::from_secs(5),
                "const chart = document.querySelector('#series-chart');
                 return chart.dataset.loaded === 'true'
                     && Number(chart.dataset.points) === arguments[0]",
                vec![json!(hours)],
            )
            .await,
        "the week's chart does not show {hours} hourly buckets"
    );
    browser.assert_no_console_errors(&[]).await;
    browser.close().await;
    eprintln!("S1 shown congested {shown_after:?} after its POST was sent");
}

pub async fn with_read_keys_required_the_page_asks_for_a_key_once_then_works(backend: Backend) {
    let key = "wall-screen-key";
    let app = dashboard_app(backend, "", Some(key)).await;
    register(&app, "K1", 1, Some(key)).await;
    post(&app, &[reading("K1", Utc::now(), false)], Some(key)).await;
    classified(&app, Some(key)).await;

    let browser = Browser::start().await;
    browser.goto(&app.url("/")).await;
    let prompt_shown = "const form = document.querySelector('form#key-prompt');
                        return form !== null && !form.hidden && form.offsetParent !== null";
    assert!(
        browser
            .until(Duration::from_secs(10), prompt_shown, vec![])
            .await
    );
    browser.screenshot("key-prompt").await;
    let submit = "const [key] = arguments;
                  const form = document.querySelector('form#key-prompt');
                  form.querySelector('input[name=key]').value = key;
                  form.requestSubmit();
                  return true;";
    // A wrong key: asked again.
    browser.eval(submit, vec![json!("not-the-key")]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        browser
            .until(Duration::from_secs(5), prompt_shown, vec![])
            .await
    );
    assert_ne!(browser.eval(READY, vec![]).await, json!(true));
    // The right one: the page loads, and keeps the key for the session only.
    browser.eval(submit, vec![json!(key)]).await;
    assert!(browser.until(Duration::from_secs(10), READY, vec![]).await);
    assert!(shown_as(&browser, "K1", "free_flow", Duration::from_secs(5)).await);
    let stored = browser
        .eval(
            "return [sessionStorage.getItem('smart-traffic-key'), localStorage.length]",
            vec![],
        )
        .await;
    assert_eq!(stored, json!([key, 0]));
    // Live with the key: the stream sends it too.
    post(&app, &[reading("K1", Utc::now(), true)], Some(key)).await;
    assert!(shown_as(&browser, "K1", "congested", Duration::from_secs(3)).await);
    // A reload in the same session does not ask again.
    browser.client.refresh().await.unwrap();
    assert!(browser.until(Duration::from_secs(10), READY, vec![]).await);
    assert_eq!(browser.eval(prompt_shown, vec![]).await, json!(false));
    // Refused requests are logged by the browser itself; nothing else may be.
    browser.assert_no_console_errors(&["status of 401"]).await;
    browser.close().await;
}

pub async fn without_tiles_the_markers_stand_on_a_plain_background(backend: Backend) {
    // Tiles from a server that is not there: the markers are drawn all the same.
    let dead = format!("http://127.0.0.1:{}/{{z}}/{{x}}/{{y}}.png", free_port());
    let app = dashboard_app(backend, &dead, None).await;
    register(&app, "T1", 1, None).await;
    post(&app, &[reading("T1", Utc::now(), true)], None).await;
    classified(&app, None).await;
    let browser = open_dashboard(&app, Duration::from_secs(10)).await;
    assert!(shown_as(&browser, "T1", "congested", Duration::from_secs(5)).await);
    // The marker is drawn inside the map's box.
    let inside = browser
        .eval(
            "const map = document.querySelector('#map').getBoundingClientRect();
             const m = document.querySelector('#map [data-sensor=\"T1\"]').getBoundingClientRect();
             return m.width > 0 && m.left >= map.left && m.right <= map.right
                 && m.top >= map.top && m.bottom <= map.bottom;",
            vec![],
        )
        .await;
    assert_eq!(inside, json!(true));
    browser.screenshot("no-tiles").await;
    // Only the tiles failed.
    let port = dead.split(':').nth(2).unwrap().split('/').next().unwrap();
    browser.assert_no_console_errors(&[port]).await;
    browser.close().await;
}

pub async fn the_api_reference_renders_offline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = send(app.get("/docs")).await.text().await.unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let browser = Browser::start().await;
    browser.goto(&app.url("/docs")).await;
    // RapiDoc draws the operations from /openapi.json inside its shadow root.
    let drawn = "const doc = document.querySelector('rapi-doc');
                 return !!doc?.shadowRoot && doc.shadowRoot.textContent.includes('/v1/events/batch')";
    assert!(browser.until(Duration::from_secs(15), drawn, vec![]).await);
    browser.screenshot("api-reference").await;
    browser.assert_no_console_errors(&[]).await;
    browser.close().await;
}

/// A thousand sensors on the map and in the table, fifty classified readings a second for ten
/// seconds: each update the page applies takes less than a frame (16 ms) of script time.
pub async fn updates_take_less_than_a_frame_with_1000_sensors_at_50_a_second(backend: Backend) {
    let app = dashboard_app(backend, "", None).await;
    let sensors = 1000_u32;
    let registrations: Vec<_> = (0..sensors)
        .map(|k| {
            let (client, url) = (app.client.clone(), app.url(&format!("/v1/sensors/L{k}")));
            tokio::spawn(async move {
                let metadata = json!({
                    "road": format!("R{}", k % 20),
                    "location": {"lat": 48.0 + f64::from(k / 40) * 0.01,
                                 "lon": 11.0 + f64::from(k % 40) * 0.01},
                });
                client.put(url).json(&metadata).send().await.unwrap()
            })
        })
        .collect();
    for registration in registrations {
        assert!(registration.await.unwrap().status().is_success());
    }
    let start = Utc::now() - TimeDelta::minutes(20);
    let first: Vec<Value> = (0..sensors)
        .map(|k| reading(&format!("L{k}"), start, false))
        .collect();
    post(&app, &first, None).await;
    classified(&app, None).await;

    let browser = open_dashboard(&app, Duration::from_secs(20)).await;
    let rows = browser
        .eval(
            "return document.querySelectorAll('#sensor-table tbody tr').length",
            vec![],
        )
        .await;
    assert_eq!(rows, json!(sensors));
    browser
        .eval(
            "performance.clearMeasures('dashboard-update'); return true",
            vec![],
        )
        .await;
    // 50 readings a second for 10 s, each sensor's label flipping.
    for second in 0..10_i64 {
        let tick = Instant::now();
        let batch: Vec<Value> = (0..50_i64)
            .map(|j| {
                let k = (second * 50 + j) % i64::from(sensors);
                let at = start + TimeDelta::minutes(1) + TimeDelta::seconds(second);
                reading(&format!("L{k}"), at, (second + j) % 2 == 0)
            })
            .collect();
        post(&app, &batch, None).await;
        tokio::time::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed())).await;
    }
    classified(&app, None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let measures = browser
        .eval(
            "const m = performance.getEntriesByName('dashboard-update').map(e => e.duration);
             m.sort((a, b) => a - b);
             return {count: m.length, max: m[m.length - 1] ?? null,
                     p99: m[Math.floor(m.length * 0.99)] ?? null,
                     median: m[Math.floor(m.length / 2)] ?? null};",
            vec![],
        )
        .await;
    eprintln!("dashboard updates: {measures}");
    assert!(measures["count"].as_u64().unwrap() >= 10, "{measures}");
    assert!(measures["max"].as_f64().unwrap() < 16.0, "{measures}");
    // Every update was applied: the last second's sensors show their new labels.
    for j in 0..50_i64 {
        let label = if (9 + j) % 2 == 0 {
            "congested"
        } else {
            "free_flow"
        };
        let sensor = format!("L{}", 450 + j);
        assert!(
            shown_as(&browser, &sensor, label, Duration::from_secs(2)).await,
            "{sensor} is not shown {label}"
        );
    }
    browser.screenshot("thousand-sensors").await;
    browser.assert_no_console_errors(&[]).await;
    browser.close().await;
}

/// WCAG 2.1 A and AA violations axe-core finds in the page as it stands, each as
/// `rule (impact): help — first targets`.
async fn accessibility_violations(browser: &Browser) -> Vec<String> {
    const AXE: &str = include_str!("../fixtures/axe/axe.min.js");
    browser
        .eval(&format!("{AXE}\nreturn typeof axe === 'object'"), vec![])
        .await;
    let found = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag',
                                          values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                .then(r => done(r.violations.map(v =>
                    `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3)
                        .map(n => n.target.join(' ')).join(', ')}`)))
                .catch(e => done([`axe failed: ${e}`]));",
            vec![],
        )
        .await
        .expect("axe runs");
    serde_json::from_value(found).expect("a list of violations")
}

/// The overview, a sensor's page and the key prompt pass axe-core's WCAG 2.1 A and AA rules
/// (contrast, names, roles, keyboard focus); every label is told by text as well as colour; the
/// table sorts from the keyboard.
pub async fn the_pages_pass_wcag_aa_checks_and_work_from_the_keyboard(backend: Backend) {
    let app = dashboard_app(backend, "", None).await;
    for (k, sensor) in ["W1", "W2", "W3"].into_iter().enumerate() {
        register(&app, sensor, u32::try_from(k).unwrap(), None).await;
    }
    let at = Utc::now() - TimeDelta::minutes(3);
    post(
        &app,
        &[
            reading("W1", at, false),
            reading("W2", at, true),
            reading("W3", at - TimeDelta::minutes(1), false),
            reading("W3", at, true),
        ],
        None,
    )
    .await;
    classified(&app, None).await;
    let browser = open_dashboard(&app, Duration::from_secs(10)).await;
    browser
        .wait_for("#timeline li[data-sensor=\"W3\"]", Duration::from_secs(5))
        .await;
    let violations = accessibility_violations(&browser).await;
    assert!(violations.is_empty(), "overview: {violations:#?}");

    // Labels are told by text too: each marker and row names its label in words or letters.
    let untold = browser
        .eval(
            "return [...document.querySelectorAll('#map [data-label], #sensor-table tbody tr')]
                .filter(e => !(e.textContent.trim() || e.getAttribute('aria-label')))
                .map(e => e.dataset.sensor)",
            vec![],
        )
        .await;
    assert_eq!(untold, json!([]), "elements with colour only");

    // The map's markers can be skipped: its skip link takes the focus to the table.
    browser.press_enter_on(".map-panel a.skip").await;
    assert!(
        browser
            .until(
                Duration::from_secs(2),
                "return document.activeElement?.id === 'sensor-table'",
                vec![],
            )
            .await,
        "the skip link does not reach the table"
    );

    // Sorting from the keyboard: focus the label column's button and press Enter.
    browser
        .press_enter_on("#sensor-table th button[data-sort=\"label\"]")
        .await;
    assert!(
        browser
            .until(
                Duration::from_secs(2),
                "const th = document.querySelector('#sensor-table th button[data-sort=\"label\"]')
                     .closest('th');
                 return ['ascending', 'descending'].includes(th.getAttribute('aria-sort'))",
                vec![],
            )
            .await,
        "the label column is not sorted"
    );

    browser.goto(&app.url("/#/sensors/W3")).await;
    browser
        .wait_for(
            "#sensor-page[data-sensor=\"W3\"] #series-chart[data-loaded=\"true\"]",
            Duration::from_secs(10),
        )
        .await;
    let violations = accessibility_violations(&browser).await;
    assert!(violations.is_empty(), "sensor page: {violations:#?}");
    browser.assert_no_console_errors(&[]).await;
    browser.close().await;

    // The key prompt.
    let keyed = dashboard_app(backend, "", Some("k")).await;
    let browser = Browser::start().await;
    browser.goto(&keyed.url("/")).await;
    browser
        .wait_for("form#key-prompt:not([hidden])", Duration::from_secs(10))
        .await;
    let violations = accessibility_violations(&browser).await;
    assert!(violations.is_empty(), "key prompt: {violations:#?}");
    browser.close().await;
}
