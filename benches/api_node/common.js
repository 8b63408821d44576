// What both anchors share: upstream's settings decryption (utils/encryption.ts: aes-256-gcm,
// key from scrypt of DEPLOYSTACK_ENCRYPTION_SECRET, derived once here), and upstream's
// answers.
const crypto = require('crypto');

const key = crypto.scryptSync(process.env.DEPLOYSTACK_ENCRYPTION_SECRET, 'deploystack-global-settings-salt', 32);
const aad = Buffer.from('deploystack-global-settings', 'utf8');

exports.decrypt = (stored) => {
  const [iv, tag, data] = stored.split(':');
  const d = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'hex'));
  d.setAAD(aad);
  d.setAuthTag(Buffer.from(tag, 'hex'));
  return d.update(data, 'hex', 'utf8') + d.final('utf8');
};

exports.unauthorized = { success: false, error: 'Authentication required' };
exports.forbidden = { success: false, error: 'Insufficient permissions', required_role: 'global_admin' };

exports.me = (u) => ({
  success: true,
  data: {
    id: u.id, username: u.username, email: u.email, first_name: u.first_name,
    last_name: u.last_name, role_id: u.role_id, email_verified: u.email_verified,
    auth_type: u.auth_type,
  },
});
