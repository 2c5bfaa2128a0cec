// graphile-worker's half of scripts/bench-vs-graphile.sh: a burn-down of pre-enqueued no-op
// jobs, timed from the worker's start to the last completion committed.
//
//   node burn-down.mjs --jobs 20000 --concurrency 8 --schema graphile_bench
//   node burn-down.mjs --drop --schema graphile_bench      (removes the schema)
//
// "Batched" is the configuration of graphile-worker's performance page: a local queue of 500
// and job completions/failures batched with no delay. Its tables live in their own schema, so
// nothing of the queue's is touched. Prints a human line and a `RESULT key=value ...` line.
import { performance } from "node:perf_hooks";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/queue_vector?sslmode=disable";

function parseArgs(argv) {
  const args = { jobs: 20000, concurrency: 8, localQueue: 500, schema: "graphile_bench", drop: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--jobs": args.jobs = positive(flag, value()); break;
      case "--concurrency": args.concurrency = positive(flag, value()); break;
      case "--local-queue": args.localQueue = positive(flag, value()); break;
      case "--schema": args.schema = value(); break;
      case "--drop": args.drop = true; break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  if (!/^[a-z_][a-z0-9_]*$/.test(args.schema)) throw new Error(`bad schema name ${args.schema}`);
  return args;
}

function positive(flag, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${text}`);
  return n;
}

// Warnings and errors only: the default logger prints a line per worker start.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile-worker ${level}: ${message}`);
});

const args = parseArgs(process.argv.slice(2));
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL || DEFAULT_URL,
  // graphile-worker's advice: 10 or concurrency + 2, whichever is larger.
  max: Math.max(10, args.concurrency + 2),
});
// A dropped idle connection must not crash the process (graphile-worker asks for both handlers).
pool.on("error", (error) => console.error(`pool error: ${error}`));
pool.on("connect", (client) => client.on("error", (error) => console.error(`client error: ${error}`)));
try {
  if (args.drop) {
    await pool.query(`DROP SCHEMA IF EXISTS ${args.schema} CASCADE`);
  } else {
    await burnDown(args);
  }
} finally {
  await pool.end();
}

async function burnDown({ jobs, concurrency, localQueue, schema }) {
  const jobsTable = `${schema}._private_jobs`;
  const utils = await makeWorkerUtils({ pgPool: pool, schema, logger });
  try {
    await utils.migrate();
    const leftover = await countRows(jobsTable);
    if (leftover !== 0) throw new Error(`${jobsTable} holds ${leftover} rows before the run`);

    // Untimed: enqueue, then the same upkeep the queue's side gets (the server may run without
    // autovacuum, and a table without statistics would be planned blind).
    for (let left = jobs; left > 0; left -= 1000) {
      const n = Math.min(left, 1000);
      await utils.addJobs(Array.from({ length: n }, () => ({ identifier: "noop", payload: {} })));
    }
    await pool.query(`VACUUM ANALYZE ${jobsTable}`);
    // Open the connections the run will use, as the queue's side does.
    const warm = await Promise.all(Array.from({ length: 4 }, () => pool.connect()));
    warm.forEach((client) => client.release());

    let ran = 0;
    let firstStart;
    let allRan;
    const allRanPromise = new Promise((resolve) => (allRan = resolve));
    const taskList = {
      noop: async () => {
        firstStart ??= performance.now();
        if (++ran === jobs) allRan();
      },
    };

    const started = performance.now();
    const runner = await run({
      pgPool: pool,
      schema,
      logger,
      taskList,
      noHandleSignals: true,
      preset: {
        worker: {
          concurrentJobs: concurrency,
          localQueue: { size: localQueue },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
    });
    await withTimeout(allRanPromise, Math.max(120_000, jobs * 10), () => `only ${ran} of ${jobs} jobs ran`);
    // The handler returning is not the end: completions are batched and written afterwards, and
    // a completed job's row is deleted. Done when the table is empty (one query at a time, only
    // after the last handler returned, so this does not slow the run).
    const drainBy = performance.now() + 30_000;
    while ((await pool.query(`SELECT EXISTS (SELECT FROM ${jobsTable}) AS more`)).rows[0].more) {
      if (performance.now() > drainBy) throw new Error(`${jobsTable} still holds rows 30 s after the last job ran`);
    }
    const finished = performance.now();
    await runner.stop();

    const left = await countRows(jobsTable);
    if (ran !== jobs || left !== 0) throw new Error(`ran ${ran} handlers for ${jobs} jobs; ${left} rows left`);
    const seconds = (finished - started) / 1000;
    const perSecond = jobs / seconds;
    // From the first job's start: the runtime's steady pace, without its start-up.
    const steady = jobs / ((finished - firstStart) / 1000);
    console.log(
      `graphile-worker 0.17.3 batched, concurrency ${concurrency}: ${jobs} jobs in ${seconds.toFixed(3)} s = ` +
        `${perSecond.toFixed(0)} jobs/s (first job started after ${(firstStart - started).toFixed(1)} ms)`,
    );
    console.log(
      `RESULT runner=graphile-worker jobs=${jobs} concurrency=${concurrency} seconds=${seconds.toFixed(4)} ` +
        `jobs_per_s=${perSecond.toFixed(1)} first_job_ms=${(firstStart - started).toFixed(2)} ` +
        `steady_jobs_per_s=${steady.toFixed(1)}`,
    );
  } finally {
    await utils.release();
  }
}

async function countRows(table) {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0].n;
}

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
