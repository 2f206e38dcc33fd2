#![cfg(unix)] // SIGHUP and symlinks
//! Conf reloads through each mount: a reload that adds a route serves it at once while a stream
//! started before it completes; a bad conf is refused (by the handle, the file watch and SIGHUP
//! alike) and the old one keeps serving; a rotated key stops working at once and the new one
//! works, with the token cache kept; new callers and models get their metric series.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sf_models_bridge::mock::Fault;
use sf_models_bridge::Config;

use common::{assert_serves, chat, http, Gateway, Mount, Setup, CHAT_MODEL};

for_each_mount!(
    a_reload_adds_a_route_while_a_stream_finishes,
    a_bad_conf_is_refused_and_the_old_one_serves,
    a_rotated_key_stops_at_once_and_the_new_one_works,
    a_configmap_symlink_swap_is_reloaded,
);

const NEW_MODEL: &str = "gpt-4o-reloaded";
const OLD_KEY: &str = "sk-old~reload-never-logged";
const NEW_KEY: &str = "sk-new~reload-never-logged";

fn keyed(key: &str) -> Setup {
    Setup::default().sections(&format!(
        "[[auth.keys]]\nname = \"alice\"\nkey = \"{key}\"\n"
    ))
}

/// `setup`'s conf for this gateway's mock, with `extra` appended (routes, say).
fn conf_text(gateway: &Gateway, setup: &Setup, extra: &str) -> String {
    format!("{}\n{extra}", setup.conf(&gateway.mock))
}

fn conf(gateway: &Gateway, setup: &Setup, extra: &str) -> Config {
    Config::from_toml_with_env(&conf_text(gateway, setup, extra), |_| None).expect("valid conf")
}

fn new_route() -> String {
    format!(
        "[[routes]]\nmodel = \"{NEW_MODEL}\"\nsalesforce_model = \"sfdc_ai__DefaultGPT4Omni\"\n"
    )
}

async fn post(gateway: &Gateway, key: &str, body: &Value) -> (u16, String) {
    let response = http()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The sum of the series of `name` whose lines contain every one of `labels`.
fn series(scrape: &str, name: &str, labels: &[&str]) -> f64 {
    scrape
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

async fn reloads(gateway: &Gateway, result: &str) -> f64 {
    let scrape = gateway.scrape().await;
    series(
        &scrape,
        "sfbridge_config_reloads_total",
        &[&format!("result=\"{result}\"")],
    )
}

/// Polls `check` for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_reload_adds_a_route_while_a_stream_finishes(mount: Mount) {
    let setup = keyed(OLD_KEY);
    let gateway = Gateway::start_with(mount, setup.clone()).await;
    let (status, _) = post(&gateway, OLD_KEY, &chat(NEW_MODEL, "not yet")).await;
    assert_eq!(status, 404);

    // A stream whose answer takes 2 s: it is in flight through the reload.
    gateway
        .upstream()
        .inject(Fault::Slow(Duration::from_secs(2)), 1);
    let mut streamed = chat(CHAT_MODEL, "across the reload");
    streamed["stream"] = json!(true);
    let url = gateway.url("/v1/chat/completions");
    let stream = tokio::spawn(async move {
        let response = http()
            .post(url)
            .bearer_auth(OLD_KEY)
            .json(&streamed)
            .send()
            .await
            .expect("stream starts");
        let status = response.status().as_u16();
        (status, response.text().await.expect("stream ends"))
    });
    eventually("the stream reaches the mock", || async {
        gateway.counters().chat_requests >= 1
    })
    .await;

    let routes_before = conf(&gateway, &setup, "").routes.len();
    let outcome = gateway
        .layer
        .reload(conf(&gateway, &setup, &new_route()))
        .expect("reloaded");
    assert_eq!(outcome.routes, routes_before + 1);
    assert!(outcome.token_cache_kept);
    assert!(
        outcome.needs_restart.is_empty(),
        "{:?}",
        outcome.needs_restart
    );
    assert!(!stream.is_finished(), "the stream is still in flight");

    // The new route is served at once, and listed.
    let (status, body) = post(&gateway, OLD_KEY, &chat(NEW_MODEL, "now")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Echo: now"), "{body}");
    let models = http()
        .get(gateway.url("/v1/models"))
        .bearer_auth(OLD_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(models.contains(NEW_MODEL), "{models}");

    // The stream started before the reload completes whole.
    let (status, text) = stream.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Echo: across the reload"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    // The new model has its own series, labelled by the caller.
    let scrape = gateway.scrape().await;
    assert_eq!(
        series(
            &scrape,
            "sfbridge_requests_total",
            &[
                &format!("model=\"{NEW_MODEL}\""),
                "caller=\"alice\"",
                "status_class=\"2xx\""
            ]
        ),
        1.0
    );
    assert_eq!(reloads(&gateway, "ok").await, 1.0);
    assert_eq!(
        gateway.counters().token_requests,
        1,
        "the token cache was kept"
    );
    gateway.stop().await;
}

async fn a_bad_conf_is_refused_and_the_old_one_serves(mount: Mount) {
    let setup = Setup::default();
    let gateway = Gateway::start_with(mount, setup.clone()).await;
    let folder =
        std::env::temp_dir().join(format!("sfbridge-reload-{}-{mount:?}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path: PathBuf = folder.join("bridge.toml");
    std::fs::write(&path, conf_text(&gateway, &setup, "")).unwrap();

    // Through the handle: the error names the key, and nothing changes.
    let bad = conf_text(&gateway, &setup, "").replace(
        "stream_keepalive_secs = 1",
        "stream_keepalive_secs = 1\ntimeout_secs = 0",
    );
    std::fs::write(&path, &bad).unwrap();
    let error = gateway
        .layer
        .reload_from_path(&path)
        .unwrap_err()
        .to_string();
    assert!(error.contains("salesforce.timeout_secs"), "{error}");
    assert_eq!(reloads(&gateway, "refused").await, 1.0);
    assert_serves(&gateway).await;
    // A body limit above the body budget in force (which only a restart changes).
    let too_large = conf_text(&gateway, &setup, "")
        .replace(
            "stream_keepalive_secs = 1",
            "stream_keepalive_secs = 1\nmax_request_bytes = 1000000000",
        )
        .replace("[server]", "[server]\nbody_budget_bytes = 1000000000");
    let too_large = Config::from_toml_with_env(&too_large, |_| None).unwrap();
    let error = gateway.layer.reload(too_large).unwrap_err().to_string();
    assert!(error.contains("salesforce.max_request_bytes"), "{error}");
    assert_eq!(reloads(&gateway, "refused").await, 2.0);

    // Through the file watch: a good conf is applied, a bad one refused.
    let _watcher = gateway.layer.watch(&path).expect("watching");
    std::fs::write(&path, conf_text(&gateway, &setup, &new_route())).unwrap();
    eventually("the watch applies the new route", || async {
        post(&gateway, "", &chat(NEW_MODEL, "watched")).await.0 == 200
    })
    .await;
    std::fs::write(&path, "[salesforce]\nnot toml at all = =\n").unwrap();
    eventually("the watch refuses the broken file", || async {
        reloads(&gateway, "refused").await >= 3.0
    })
    .await;
    let (status, body) = post(&gateway, "", &chat(NEW_MODEL, "still")).await;
    assert_eq!(status, 200, "the previous conf keeps serving: {body}");
    assert_serves(&gateway).await;

    // SIGHUP reloads the file as it is (the good conf again).
    std::fs::write(&path, conf_text(&gateway, &setup, &new_route())).unwrap();
    eventually("the rewrite is applied", || async {
        reloads(&gateway, "ok").await >= 2.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = reloads(&gateway, "ok").await;
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    eventually("SIGHUP reloads", || async {
        reloads(&gateway, "ok").await > before
    })
    .await;
    assert_serves(&gateway).await;
    gateway.stop().await;
    std::fs::remove_dir_all(&folder).ok();
}

async fn a_rotated_key_stops_at_once_and_the_new_one_works(mount: Mount) {
    let gateway = Gateway::start_with(mount, keyed(OLD_KEY)).await;
    let (status, body) = post(&gateway, OLD_KEY, &chat(CHAT_MODEL, "before")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(&gateway, NEW_KEY, &chat(CHAT_MODEL, "too early")).await;
    assert_eq!(status, 401);

    // Alice's key rotates, and carol arrives.
    let rotated = keyed(NEW_KEY).sections(&format!(
        "[[auth.keys]]\nname = \"carol\"\nkey = \"{OLD_KEY}-carol\"\n"
    ));
    gateway
        .layer
        .reload(conf(&gateway, &rotated, ""))
        .expect("reloaded");
    let (status, _) = post(&gateway, OLD_KEY, &chat(CHAT_MODEL, "stale")).await;
    assert_eq!(status, 401, "the old key stops at once");
    let (status, body) = post(&gateway, NEW_KEY, &chat(CHAT_MODEL, "after")).await;
    assert_eq!(status, 200, "{body}");
    let carol = format!("{OLD_KEY}-carol");
    let (status, body) = post(&gateway, &carol, &chat(CHAT_MODEL, "hello")).await;
    assert_eq!(status, 200, "{body}");

    let scrape = gateway.scrape().await;
    for caller in ["alice", "carol"] {
        assert_eq!(
            series(
                &scrape,
                "sfbridge_requests_total",
                &[
                    &format!("caller=\"{caller}\""),
                    "endpoint=\"chat_completions\"",
                    "status_class=\"2xx\""
                ]
            ),
            if caller == "alice" { 2.0 } else { 1.0 },
            "{caller}"
        );
    }
    assert_eq!(
        gateway.counters().token_requests,
        1,
        "the token cache was kept"
    );
    for key in [OLD_KEY, NEW_KEY] {
        assert!(!scrape.contains(key), "a key is in the metrics");
    }
    gateway.stop().await;
}

/// A Kubernetes ConfigMap volume: `bridge.toml -> ..data/bridge.toml`, `..data -> ..data_v1`,
/// updated by pointing a new `..data` at a new folder (a rename), never writing `bridge.toml`.
async fn a_configmap_symlink_swap_is_reloaded(mount: Mount) {
    let setup = Setup::default();
    let gateway = Gateway::start_with(mount, setup.clone()).await;
    let folder = std::env::temp_dir().join(format!(
        "sfbridge-configmap-{}-{mount:?}",
        std::process::id()
    ));
    std::fs::remove_dir_all(&folder).ok();
    for (version, extra) in [("..data_v1", String::new()), ("..data_v2", new_route())] {
        std::fs::create_dir_all(folder.join(version)).unwrap();
        std::fs::write(
            folder.join(version).join("bridge.toml"),
            conf_text(&gateway, &setup, &extra),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("..data_v1", folder.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/bridge.toml", folder.join("bridge.toml")).unwrap();
    let _watcher = gateway
        .layer
        .watch(folder.join("bridge.toml"))
        .expect("watching");
    assert_eq!(post(&gateway, "", &chat(NEW_MODEL, "not yet")).await.0, 404);

    std::os::unix::fs::symlink("..data_v2", folder.join("..data_tmp")).unwrap();
    std::fs::rename(folder.join("..data_tmp"), folder.join("..data")).unwrap();
    eventually("the swap is applied", || async {
        post(&gateway, "", &chat(NEW_MODEL, "swapped")).await.0 == 200
    })
    .await;
    gateway.stop().await;
    std::fs::remove_dir_all(&folder).ok();
}
