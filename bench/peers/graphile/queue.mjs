// The peer: the same workload as `bench queue` on graphile-worker, on the same Postgres.
//   node queue.mjs <database-url> <workers> <jobs>   prints one JSON line
// Jobs are added in one statement before the clock starts; the clock stops when none remain.
import { Logger, run, runMigrations } from "graphile-worker";
import pg from "pg";

const [connectionString, workers, jobs] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
await runMigrations({ connectionString, logger: new Logger(() => () => {}) });
const client = new pg.Client({ connectionString });
await client.connect();
await client.query(
  `select graphile_worker.add_jobs(array(
     select row('noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec
     from generate_series(1, $1)))`,
  [jobs],
);
const started = process.hrtime.bigint();
const runner = await run({
  connectionString,
  concurrency: workers,
  noHandleSignals: true,
  pollInterval: 100,
  logger: new Logger(() => () => {}),
  taskList: { noop: async () => {} },
});
let maxLag = 0;
for (;;) {
  const { rows } = await client.query(
    `select count(*)::int as left,
            coalesce(extract(epoch from now() - (min(run_at) filter (where locked_at is null))), 0)::float8 as lag
     from graphile_worker.jobs`,
  );
  maxLag = Math.max(maxLag, rows[0].lag);
  if (rows[0].left === 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
await client.end();
console.log(JSON.stringify({ workers, jobs, seconds, per_second: jobs / seconds, max_lag_s: maxLag }));
