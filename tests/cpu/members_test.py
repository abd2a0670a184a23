"""A sweep's members on CPU: convolutional members one after another (no
grouped convolution), dense ones vmapped; on GPU and TPU always vmapped."""

import jax
import jax.numpy as jnp
import numpy as np

from dcgan_jax.cpu import members


def _conv(weights, x):
  return jax.lax.conv_general_dilated(x, weights['kernel'], (1, 1), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO',
                                                         'NHWC'))


def _lowered(fn, platform, *args):
  exported = jax.export.export(jax.jit(fn), platforms=[platform])(*args)
  return exported.mlir_module()


def test_members_give_what_vmap_gives_and_convolve_ungrouped_on_cpu():
  # Each member's own kernel on its own activations, as inside a network.
  weights = {'kernel': jax.random.normal(jax.random.key(0), (3, 3, 3, 2, 4))}
  x = jax.random.normal(jax.random.key(1), (3, 8, 5, 5, 2))
  fn = lambda w, x: members.over_members(_conv, w, x)
  np.testing.assert_allclose(jax.jit(fn)(weights, x),
                             jax.vmap(_conv)(weights, x), rtol=1e-5,
                             atol=1e-5)
  cpu, cuda = (_lowered(fn, platform, weights, x)
               for platform in ('cpu', 'cuda'))
  assert cpu.count('stablehlo.convolution') == 3
  assert 'feature_group_count = 1' in cpu
  assert 'feature_group_count = 3' in cuda  # vmapped: one grouped one.


def test_dense_members_stay_vmapped_on_cpu():
  weights = {'kernel': jnp.ones((3, 4, 2))}
  fn = lambda w: members.over_members(lambda w: jnp.ones((5, 4)) @ w['kernel'],
                                      w)
  module = _lowered(fn, 'cpu', weights)
  assert module.count('stablehlo.dot_general') == 1
  np.testing.assert_array_equal(jax.jit(fn)(weights), jnp.full((3, 5, 2), 4.))
