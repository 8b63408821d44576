// The peer `cargo bench --bench http` measures us against: Fastify 5 answering a JSON hello,
// and a `SELECT 1` through a node-postgres pool of 10 (PG* environment variables).
const fastify = require('fastify')({ logger: false });
const { Pool } = require('pg');

const pool = new Pool({ max: 10 });
fastify.get('/hello', async () => ({ hello: 'world' }));
fastify.get('/db', async () => {
  await pool.query('SELECT 1');
  return { status: 'ok' };
});
fastify.listen({ port: Number(process.env.PORT), host: '127.0.0.1' }).catch((e) => {
  console.error(e);
  process.exit(1);
});
