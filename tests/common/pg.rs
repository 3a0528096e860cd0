//! A throwaway PostgreSQL schema for one test, in the database of
//! `RELAY_TEST_DATABASE_URL` (`.ci/run` sets it; with `CI` set a missing URL fails the
//! test instead of skipping it).

use std::sync::atomic::{AtomicU64, Ordering};

static SCHEMA_SEQ: AtomicU64 = AtomicU64::new(0);

/// A schema created now and dropped with the value.
pub struct TestSchema {
    base: String,
    schema: String,
}

fn execute(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
    });
}

impl TestSchema {
    /// `None` (and a "skipped" line) without a URL outside CI.
    pub fn create(name: &str) -> Option<TestSchema> {
        let Ok(base) = std::env::var("RELAY_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but RELAY_TEST_DATABASE_URL is missing (.ci/run sets it)"
            );
            eprintln!("skipped: no RELAY_TEST_DATABASE_URL");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "relay_{name}_{}_{}_{nanos}",
            std::process::id(),
            SCHEMA_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        execute(&base, &format!("CREATE SCHEMA {schema}"));
        Some(TestSchema { base, schema })
    }

    /// The URL whose connections use the schema.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.schema)
    }

    /// Runs SQL in the schema (a test reshaping the tables, e.g. to an older version).
    #[allow(dead_code)]
    pub fn execute(&self, sql: &str) {
        execute(&self.url(), sql);
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        execute(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
        );
    }
}
