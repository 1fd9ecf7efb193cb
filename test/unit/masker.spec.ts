import assert from 'node:assert/strict';
import { MASK, Masker } from '../../agent/masker.js';

describe('Masker', () => {
  it('masks every occurrence, the longest secret first', () => {
    const masker = new Masker();
    masker.add('hunter2');
    masker.add('hunter2-and-more');
    assert.equal(masker.mask('a hunter2-and-more b hunter2'), `a ${MASK} b ${MASK}`);
  });

  it('treats secrets as text, not patterns', () => {
    const masker = new Masker();
    masker.add('a.b*c');
    assert.equal(masker.mask('axbbc a.b*c'), `axbbc ${MASK}`);
  });

  it('masks each line of a multi-line secret', () => {
    const masker = new Masker();
    masker.add('line one\nline two');
    assert.equal(masker.mask('x line two y'), `x ${MASK} y`);
  });

  it('leaves text alone without secrets, and ignores the empty value', () => {
    const masker = new Masker();
    masker.add('');
    assert.equal(masker.mask('nothing here'), 'nothing here');
  });
});
