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

// routes/users/getCurrentUser: the bare profile with the `user-display` settings as booleans.
exports.me = (u, display) => {
  const flag = (key) => display.some((s) => s.key === key && s.value === 'true');
  return {
    id: u.id, username: u.username, email: u.email, first_name: u.first_name,
    last_name: u.last_name, role_id: u.role_id, auth_type: u.auth_type, github_id: u.github_id,
    user_display_settings: {
      header_show_discord: flag('user-display.header_show_discord'),
      header_show_feedback: flag('user-display.header_show_feedback'),
    },
  };
};
