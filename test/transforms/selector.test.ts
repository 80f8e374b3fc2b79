import t from 'tap';
import { EventFilter, lookup, parseSelector, SelectorError } from '../../src/transforms/selector.js';
import { k8sAuditLines } from '../helpers/fixtures.js';

const event = {
  kind: 'Event',
  auditID: 'a1',
  stage: 'ResponseComplete',
  verb: 'create',
  user: { username: 'system:serviceaccount:kube-system:deployer', groups: ['system:serviceaccounts', 'system:authenticated'] },
  objectRef: { resource: 'secrets', namespace: 'prod', name: 'db' },
  responseStatus: { code: 201 },
  annotations: { 'authorization.k8s.io/decision': 'allow' },
  impersonatedUser: null,
};
const matches = (sel: string, e: unknown = event) => parseSelector(sel).matches(e);

t.test('operators, as kubectl -l reads them', async (t) => {
  t.ok(matches('verb=create'));
  t.ok(matches('verb==create'));
  t.notOk(matches('verb!=create'));
  t.ok(matches('verb in (create,update,patch,delete)'));
  t.ok(matches('verb in(get, create )'), 'spaces around values');
  t.notOk(matches('verb notin (create,delete)'));
  t.ok(matches('verb notin (get,list)'));
  t.ok(matches('objectRef.resource'), 'existence');
  t.notOk(matches('!objectRef.resource'));
  t.ok(matches('!requestObject'), 'absent key');
  t.ok(matches('!impersonatedUser'), 'null counts as absent');
  t.notOk(matches('impersonatedUser'));
  t.ok(matches('objectRef.subresource!=exec'), 'an absent key satisfies != (as in Kubernetes)');
  t.ok(matches('objectRef.subresource notin (exec,attach)'), 'and notin');
  t.notOk(matches('objectRef.subresource=exec'));
  t.notOk(matches('objectRef.subresource in (exec)'));
  t.ok(matches('responseStatus.code=201'), 'numbers compare as text');
  t.ok(matches('responseStatus.code>200'));
  t.notOk(matches('responseStatus.code<200'));
  t.notOk(matches('verb>1'), 'a non-number never compares');
  t.ok(matches('user.username=system:serviceaccount:kube-system:deployer'), 'colons in values');
  t.ok(matches('user.groups=system:authenticated'), 'an array matches when an element does');
  t.notOk(matches('user.groups!=system:authenticated'));
  t.ok(matches('user.groups notin (system:masters)'));
  t.ok(matches('annotations.authorization.k8s.io/decision=allow'), 'a key with dots inside');
  t.notOk(matches('user=x'), 'an object is not a value');
  t.ok(matches('user'), 'but exists');
  t.ok(matches('verb=create,objectRef.resource=secrets, objectRef.namespace in (prod,staging)'), 'commas AND');
  t.notOk(matches('verb=create,objectRef.resource=pods'));
  t.ok(matches('objectRef.name='.replace('=', '!=')), 'key!= with an empty value');
  t.ok(matches('stage=', { stage: '' }), 'key= matches the empty string');
  t.same(parseSelector('  verb = create ').requirements, [{ path: ['verb'], op: '=', values: ['create'] }]);
});

t.test('bad selectors name the offending character and its column', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['verb in (create))', /^unexpected '\)' at column 17 \(expected ','\): verb in \(create\)\)$/],
    ['verb in create', /^unexpected 'create' at column 9 \(expected '\('\)/],
    ['verb in ()', /^unexpected '\)' at column 10 \(expected a value\)/],
    ['verb in (a,)', /^unexpected '\)' at column 12 \(expected a value\)/],
    ['verb in (a b)', /^unexpected 'b' at column 12 \(expected ',' or '\)'\)/],
    ['verb in (a', /^unexpected end of selector at column 11/],
    ['=create', /^unexpected '=' at column 1 \(expected a key\)/],
    ['verb=create,', /^unexpected end of selector at column 13 \(expected a key\)/],
    ['verb=create,,x', /^unexpected ',' at column 13/],
    ['verb create', /^unexpected 'create' at column 6 \(expected an operator/],
    ['!!verb', /^unexpected '!' at column 2/],
    ['verb=a=b', /^unexpected '=' at column 7 \(expected ','\)/],
    ['code>abc', /^unexpected 'abc' at column 6 \(expected an integer\)/],
    ['objectRef..name', /^empty path segment in key 'objectRef..name' at column 1/],
    ['', /^empty selector$/],
    ['   ', /^empty selector$/],
  ];
  for (const [text, re] of cases) {
    let caught: unknown;
    try {
      parseSelector(text);
    } catch (err) {
      caught = err;
    }
    t.ok(caught instanceof SelectorError, `rejects ${JSON.stringify(text)}`);
    t.match((caught as Error)?.message, re, text);
  }
});

t.test('EventFilter: several --select OR, any --exclude drops', async (t) => {
  const f = new EventFilter(
    [parseSelector('verb in (create,delete),objectRef.resource=secrets'), parseSelector('verb=list')],
    [parseSelector('user.username=system:kube-proxy')],
  );
  t.ok(f.active);
  t.ok(f.accepts(event));
  t.ok(f.accepts({ verb: 'list' }));
  t.notOk(f.accepts({ verb: 'get', objectRef: { resource: 'secrets' } }));
  t.notOk(f.accepts({ verb: 'list', user: { username: 'system:kube-proxy' } }));
  const excludeOnly = new EventFilter([], [parseSelector('verb=watch')]);
  t.ok(excludeOnly.accepts({ verb: 'get' }));
  t.notOk(excludeOnly.accepts({ verb: 'watch' }));
  t.notOk(new EventFilter([], []).active);
});

t.test('on the real events', async (t) => {
  const events = k8sAuditLines().map((l) => JSON.parse(l));
  const count = (sel: string) => events.filter((e) => parseSelector(sel).matches(e)).length;
  const forbidden = events.filter((e) => e.responseStatus?.code === 403).length;
  t.ok(forbidden > 0);
  t.equal(count('responseStatus.code=403'), forbidden);
  t.equal(count('responseStatus.code!=403'), events.length - forbidden);
  t.equal(count('impersonatedUser.username=bob'), events.filter((e) => e.impersonatedUser?.username === 'bob').length);
  t.equal(count('objectRef.subresource in (exec,attach)'), events.filter((e) => ['exec', 'attach'].includes(e.objectRef?.subresource)).length);
  t.equal(count('stage'), events.length);
});

t.test('lookup', async (t) => {
  t.equal(lookup({ a: { 'b.c': { d: 1 } } }, ['a', 'b', 'c', 'd']), 1);
  t.equal(lookup({ a: { b: {}, 'b.c': 2 } }, ['a', 'b', 'c']), 2, 'falls back when the longer key is absent on one branch');
  t.equal(lookup({ a: [1] }, ['a', '0']), undefined, 'no indexing into arrays');
  t.equal(lookup({ constructor: 1 }, ['toString']), undefined, 'own keys only');
});
