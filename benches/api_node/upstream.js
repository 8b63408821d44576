// Upstream's stack, doing per request what upstream does: Fastify 5 with @fastify/cookie,
// drizzle-orm over a node-postgres pool of 10 (upstream sets nothing else). The session is
// found by the cookie's value joined to its user (lucia's validateSession), the role checked
// (requireGlobalAdmin), the setting read and decrypted when encrypted
// (GlobalSettingsService.get).
const fastify = require('fastify')({ logger: false });
const { Pool } = require('pg');
const { drizzle } = require('drizzle-orm/node-postgres');
const { pgTable, text, boolean, timestamp } = require('drizzle-orm/pg-core');
const { eq, and } = require('drizzle-orm');
const common = require('./common');

const users = pgTable('users', {
  id: text('id').primaryKey(), username: text('username'), email: text('email'),
  first_name: text('first_name'), last_name: text('last_name'), role_id: text('role_id'),
  email_verified: boolean('email_verified'), auth_type: text('auth_type'), github_id: text('github_id'),
});
const sessions = pgTable('auth_sessions', {
  id: text('id').primaryKey(), user_id: text('user_id'), expires_at: timestamp('expires_at', { withTimezone: true }),
});
const teams = pgTable('teams', {
  id: text('id').primaryKey(), name: text('name'), slug: text('slug'), description: text('description'),
  owner_id: text('owner_id'), is_default: boolean('is_default'),
  created_at: timestamp('created_at', { withTimezone: true }), updated_at: timestamp('updated_at', { withTimezone: true }),
});
const memberships = pgTable('team_memberships', {
  id: text('id').primaryKey(), team_id: text('team_id'), user_id: text('user_id'), role: text('role'),
  joined_at: timestamp('joined_at', { withTimezone: true }),
});
const roles = pgTable('roles', { id: text('id').primaryKey(), permissions: text('permissions').array() });
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
  const display = await db.select().from(settings).where(eq(settings.group_id, 'user-display'));
  return common.me(user, display);
});

// routes/users/getUserTeams: TeamService.getUserTeams (memberships joined to teams), then the
// role and ownership of each.
fastify.get('/api/users/me/teams', async (request, reply) => {
  const user = await validate(request);
  if (!user) return reply.code(401).send(common.unauthorized);
  const rows = await db.select({ team: teams, role: memberships.role }).from(memberships)
    .innerJoin(teams, eq(memberships.team_id, teams.id)).where(eq(memberships.user_id, user.id));
  return {
    success: true,
    teams: rows.map((r) => ({ ...r.team, role: r.role, is_owner: r.team.owner_id === user.id })),
  };
});

// routes/teams/members: membership or the global permission (the role's permissions read
// from the database), the team, then its members joined to their accounts.
fastify.get('/api/teams/:id/members', async (request, reply) => {
  const user = await validate(request);
  if (!user) return reply.code(401).send(common.unauthorized);
  const teamId = request.params.id;
  const member = await db.select().from(memberships)
    .where(and(eq(memberships.team_id, teamId), eq(memberships.user_id, user.id)));
  if (member.length === 0) {
    const role = await db.select().from(roles).where(eq(roles.id, user.role_id));
    if (!role[0] || !(role[0].permissions || []).includes('team.members.view')) {
      return reply.code(403).send({ success: false, error: "You do not have permission to view this team's members" });
    }
  }
  const team = await db.select().from(teams).where(eq(teams.id, teamId));
  if (team.length === 0) return reply.code(404).send({ success: false, error: 'Team not found' });
  const rows = await db.select({ m: memberships, u: users }).from(memberships)
    .innerJoin(users, eq(memberships.user_id, users.id)).where(eq(memberships.team_id, teamId));
  return {
    success: true,
    data: rows.map((r) => ({
      id: r.m.id, user_id: r.u.id, username: r.u.username, email: r.u.email,
      first_name: r.u.first_name, last_name: r.u.last_name, role: r.m.role,
      is_admin: r.m.role === 'team_admin', is_owner: team[0].owner_id === r.u.id, joined_at: r.m.joined_at,
    })),
  };
});

// routes/admin/users/search: every user loaded, filtered and paged in memory.
fastify.get('/api/admin/users/search', async (request, reply) => {
  const user = await validate(request);
  if (!user) return reply.code(401).send(common.unauthorized);
  if (user.role_id !== 'global_admin') return reply.code(403).send(common.forbidden);
  const limit = Number(request.query.limit || 20);
  const offset = Number(request.query.offset || 0);
  const email = (request.query.email || '').toLowerCase();
  const all = await db.select().from(users);
  const found = all.filter((u) => !email || u.email.toLowerCase().includes(email));
  return {
    success: true,
    data: {
      users: found.slice(offset, offset + limit),
      pagination: { total: found.length, limit, offset, has_more: offset + limit < found.length },
    },
  };
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
