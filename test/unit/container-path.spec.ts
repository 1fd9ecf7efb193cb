import assert from 'node:assert/strict';
import { isInsideFolder } from '../../workspace/index.js';

describe('isInsideFolder', () => {
  it('is true for the folder itself and what is below it', () => {
    assert.equal(isInsideFolder('/work/a', '/work/a'), true);
    assert.equal(isInsideFolder('/work/a/', '/work/a'), true);
    assert.equal(isInsideFolder('/work/a/out/report.txt', '/work/a'), true);
    assert.equal(isInsideFolder('/work/a/out/report.txt', '/work/a/'), true);
  });

  it('is not fooled by a name that starts like the folder, or by ..', () => {
    assert.equal(isInsideFolder('/work/ab/report.txt', '/work/a'), false);
    assert.equal(isInsideFolder('/work/ab', '/work/a'), false);
    assert.equal(isInsideFolder('/work/a/../ab/report.txt', '/work/a'), false);
    assert.equal(isInsideFolder('/work', '/work/a'), false);
    assert.equal(isInsideFolder('/srv/reports/report.txt', '/work/a'), false);
  });

  it('takes a name that starts with two dots as a name inside', () => {
    assert.equal(isInsideFolder('/work/a/..report', '/work/a'), true);
    assert.equal(isInsideFolder('/work/a/...', '/work/a'), true);
  });
});
