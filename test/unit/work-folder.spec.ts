import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import {
  createWorkFolder,
  removeWorkFolder,
  workFolderName,
  workFolderTaskKey,
} from '../../workspace/index.js';

describe('work folders', () => {
  it('are named <UTC yyyyMMddHHmmss>-<taskId>-<counter>, with odd characters replaced', () => {
    const date = new Date(Date.UTC(2026, 10, 22, 14, 30, 5));
    assert.equal(workFolderName('T-42', date, 7), '20261122143005-T-42-7');
    assert.equal(workFolderName('a.b/c', date, 1), '20261122143005-a_b_c-1');
    assert.equal(workFolderTaskKey('20261122143005-T-42-7'), 'T-42');
  });

  it('are fresh for every step and removed whole', async () => {
    const workDir = await mkdtemp(join(tmpdir(), 'cuttle-work-'));
    try {
      const first = await createWorkFolder(workDir, 'T.1');
      const second = await createWorkFolder(workDir, 'T.1');
      assert.notEqual(first, second);
      assert.match(basename(first), /^\d{14}-T_1-\d+$/);
      assert.ok((await stat(join(first, '.cuttle'))).isDirectory());
      await removeWorkFolder(first);
      await assert.rejects(stat(first));
      await removeWorkFolder(first); // already gone is fine
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  });
});
