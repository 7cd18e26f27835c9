/**
 * A CRL file holding several CAs' CRLs (a bundle, as operators concatenate
 * them): every CRL in it is in force. OpenSSL through Node reads only the
 * first CRL of a PEM buffer, so without splitting, the second CA's revocations
 * were ignored and its valid clients refused for want of a CRL.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createCrl } from '../../src/pki/create-crl.ts';
import type { TestCert } from '../helpers/pki.ts';
import { startHarness, type Harness } from '../helpers/gateway.ts';

let h: Harness;
let goodB: TestCert;
let revokedB: TestCert;

before(async () => {
  h = await startHarness({
    patch: (cfg, dir, pki) => {
      const caB = pki.otherCa();
      goodB = pki.issueClient({ ca: caB, spiffeIds: [`spiffe://${pki.trustDomain}/ns/b/sa/good`] });
      revokedB = pki.issueClient({ ca: caB, spiffeIds: [`spiffe://${pki.trustDomain}/ns/b/sa/revoked`] });
      const crlB = createCrl({ ca: caB, revoked: [{ serialNumber: revokedB.serialNumber, revocationDate: new Date() }] });
      writeFileSync(join(dir, 'cas.pem'), `${pki.ca.certPem}${caB.certPem}`);
      writeFileSync(join(dir, 'crls.pem'), `${readFileSync(pki.paths.crl, 'utf8')}${crlB}`);
      return { ...cfg, tls: { ...(cfg.tls as object), clientCa: join(dir, 'cas.pem'), crl: join(dir, 'crls.pem') } } as typeof cfg;
    },
  });
});
after(() => h.close());

test('every CRL in a bundle file is enforced: the second CA\'s revoked client is refused, its valid client accepted', async () => {
  const good = await h.request('/svc/x', { cert: goodB });
  assert.notEqual(good.status, 0);
  assert.equal(good.json().reason, 'authz_no_matching_rule', 'the valid client of the second CA completes the handshake and reaches the policy');
  await assert.rejects(h.request('/svc/x', { cert: revokedB }));
  const events = await h.auditEvents();
  assert.ok(events.some((e) => e.type === 'tls_handshake' && e.reason === 'peer_cert_revoked'));
  // The first CA's clients are unaffected.
  assert.equal((await h.request('/svc/x')).status, 200);
});
