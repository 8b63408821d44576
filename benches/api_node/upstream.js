// Upstream's stack, doing per request what upstream does: Fastify 5 with @fastify/cookie,
// drizzle-orm over a node-postgres pool of 10 (upstream sets nothing else). The session is
// found by the cookie's value joined to its user (lucia's validateSession), the role checked
// (requireGlobalAdmin), the setting read and decrypted when encrypted
// (GlobalSettingsService.get).
const fastify = require('fastify')({ logger: false });
const { Pool } = require('pg');
const { drizzle } = require('drizzle-orm/node-postgres');
const { pgTable, text, boolean, timestamp } = require('drizzle-orm/pg-core');
const { eq } = require('drizzle-orm');
const common = require('./common');

const users = pgTable('users', {
  id: text('id').primaryKey(), username: text('username'), email: text('email'),
  first_name: text('first_name'), last_name: text('last_name'), role_id: text('role_id'),
  email_verified: boolean('email_verified'), auth_type: text('auth_type'),
});
const sessions = pgTable('auth_sessions', {
  id: text('id').primaryKey(), user_id: text('user_id'), expires_at: timestamp('expires_at', { withTimezone: true }),
});
const settings = pgTable('global_settings', {
  key: text('key').primaryKey(), name: text('name'), value: text('value'), type: text('type'),
  description: text('description'), is_encrypted: boolean('is_encrypted'), group_id: text('group_id'),
  created_at: timestamp('created_at', { withTimezone: true }), updated_at: timestamp('updated_at', { withTimezone: true }),
});

const db = drizzle(new Pool({ max: 10 }));
fastify.register(require('@fastify/cookie'));

async function validate(request) {
  const id = request.cookies.session;
  if (!id) return null;
  const rows = await db.select({ user: users, session: sessions }).from(sessions)
    .innerJoin(users, eq(sessions.user_id, users.id)).where(eq(sessions.id, id));
  if (rows.length === 0 || rows[0].session.expires_at < new Date()) return null;
  return rows[0].user;
}

fastify.get('/api/users/me', async (request, reply) => {
  const user = await validate(request);
  if (!user) return reply.code(401).send(common.unauthorized);
  return common.me(user);
});

fastify.get('/api/settings/:key', async (request, reply) => {
  const user = await validate(request);
  if (!user) return reply.code(401).send(common.unauthorized);
  if (user.role_id !== 'global_admin') return reply.code(403).send(common.forbidden);
  const rows = await db.select().from(settings).where(eq(settings.key, request.params.key));
  if (rows.length === 0) return reply.code(404).send({ success: false, error: 'Setting not found' });
  const s = rows[0];
  return { success: true, data: { ...s, value: s.is_encrypted ? common.decrypt(s.value) : s.value } };
});

fastify.listen({ port: Number(process.env.PORT), host: '127.0.0.1' }).catch((e) => {
  console.error(e);
  process.exit(1);
});
