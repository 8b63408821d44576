// The peer `cargo bench --bench queue` measures us against: graphile-worker, the fastest
// Node queue on PostgreSQL, configured as in the issue (concurrency 24, a local queue of
// 500, batched completion), on its own database of the same server (PG* variables).
// Drains DRAIN no-op jobs added beforehand, then measures IDLE enqueue -> handler start
// latencies one job at a time; prints one JSON line.
const { run, Logger } = require('graphile-worker');
const { Pool } = require('pg');

const drain = Number(process.env.DRAIN || 50000);
const idle = Number(process.env.IDLE || 1000);
const quiet = new Logger(() => () => {});
const options = {
  concurrency: 24,
  noHandleSignals: true,
  pollInterval: 1000,
  logger: quiet,
  preset: {
    worker: {
      localQueue: { size: 500 },
      completeJobBatchDelay: 5,
      failJobBatchDelay: 5,
      preparedStatements: true,
    },
  },
};

(async () => {
  const pool = new Pool({ max: 2 });
  // Installs (or upgrades) graphile-worker's schema.
  await (await run({ ...options, concurrency: 1, taskList: { noop: async () => {} } })).stop();
  await pool.query('DELETE FROM graphile_worker._private_jobs');
  for (let added = 0; added < drain; added += 10000) {
    await pool.query(
      `SELECT graphile_worker.add_jobs(array(
         SELECT ('noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec
         FROM generate_series(1, $1)))`,
      [Math.min(10000, drain - added)],
    );
  }
  let done = 0;
  let drained;
  const finished = new Promise((resolve) => (drained = resolve));
  const started = process.hrtime.bigint();
  const runner = await run({
    ...options,
    taskList: { noop: async () => { if (++done === drain) drained(); } },
  });
  await finished;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await runner.stop();

  let began;
  const idleRunner = await run({
    ...options,
    taskList: { noop_idle: async () => began(process.hrtime.bigint()) },
  });
  await new Promise((r) => setTimeout(r, 500));
  const latencies = [];
  for (let i = 0; i < idle; i++) {
    const start = new Promise((resolve) => (began = resolve));
    const sent = process.hrtime.bigint();
    await pool.query("SELECT graphile_worker.add_job('noop_idle', '{}'::json)");
    latencies.push(Number((await start) - sent) / 1e6);
    await new Promise((r) => setTimeout(r, 2));
  }
  await idleRunner.stop();
  await pool.end();
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.round((latencies.length - 1) * q)];
  console.log(JSON.stringify({
    drain_jobs_per_s: Math.round(drain / seconds),
    idle_p50_ms: at(0.5),
    idle_p99_ms: at(0.99),
  }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
