//! Fifty tests that each index and search their own project at once: the load that made teams
//! serialise their suites. Run with `cargo nextest run --test many -j 16` (in `examples/downstream`).

use std::time::Duration;

use downstream::{router, AppState, NoteWorker, DIM, MIGRATOR};
use harness::TestEnv;
use serde_json::{json, Value};

async fn index_and_find_only_my_note(n: u32) -> anyhow::Result<()> {
    let env = TestEnv::builder(format!("many_{n}"))
        .vector_size(DIM)
        .migrations(&MIGRATOR)
        .build()
        .await?;
    let worker = env
        .spawn_worker(NoteWorker {
            qdrant: env.qdrant_client(),
            collection: env.collection().to_owned(),
        })
        .await?;
    let app = env
        .spawn_app(router(AppState {
            queue: env.queue().clone(),
            qdrant: env.qdrant_client(),
            collection: env.collection().to_owned(),
            project: env.project().to_owned(),
        }))
        .await?;
    let mine = format!("note number {n} of the many");

    let response: Value = app
        .post_json("/notes", &json!({ "text": mine }))
        .await?
        .json()
        .await?;
    let job = response["job_id"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no job id: {response}"))?;
    env.wait_for_job(job, Duration::from_secs(120)).await?;
    let found: Value = app
        .get("/notes/search?q=note%20number")
        .await?
        .json()
        .await?;

    assert_eq!(
        found["notes"],
        json!([mine]),
        "saw other tests' notes or lost mine"
    );
    worker.shutdown().await;
    env.finish().await?;
    Ok(())
}

macro_rules! many {
    ($($name:ident = $n:expr),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() -> anyhow::Result<()> {
                index_and_find_only_my_note($n).await
            }
        )*
    };
}

many!(
    t01 = 1,
    t02 = 2,
    t03 = 3,
    t04 = 4,
    t05 = 5,
    t06 = 6,
    t07 = 7,
    t08 = 8,
    t09 = 9,
    t10 = 10,
    t11 = 11,
    t12 = 12,
    t13 = 13,
    t14 = 14,
    t15 = 15,
    t16 = 16,
    t17 = 17,
    t18 = 18,
    t19 = 19,
    t20 = 20,
    t21 = 21,
    t22 = 22,
    t23 = 23,
    t24 = 24,
    t25 = 25,
    t26 = 26,
    t27 = 27,
    t28 = 28,
    t29 = 29,
    t30 = 30,
    t31 = 31,
    t32 = 32,
    t33 = 33,
    t34 = 34,
    t35 = 35,
    t36 = 36,
    t37 = 37,
    t38 = 38,
    t39 = 39,
    t40 = 40,
    t41 = 41,
    t42 = 42,
    t43 = 43,
    t44 = 44,
    t45 = 45,
    t46 = 46,
    t47 = 47,
    t48 = 48,
    t49 = 49,
    t50 = 50,
);
