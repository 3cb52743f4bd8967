"""The geometry module against brute force: output sizes, "same" pads, which taps land inside."""
import itertools

import naive
from poolnd import _geometry


def test_output_size_equals_brute_force_count():
    for L, k, s, d, b, a, ceil in itertools.product(range(1, 9), range(1, 5), range(1, 4),
                                                    range(1, 3), range(3), range(3),
                                                    (False, True)):
        # the formula may go below zero where no window fits; the count stops at zero
        assert max(_geometry.output_size(L, k, s, d, b, a, ceil), 0) == \
            naive.count_windows(L, k, s, d, b, a, ceil), (L, k, s, d, b, a, ceil)


def test_same_pads_match_tensorflow_rule():
    for L, k, s, d in itertools.product(range(1, 12), range(1, 5), range(1, 5), range(1, 3)):
        for lower in (False, True):
            assert _geometry.same_pads(L, k, s, d, lower) == naive.same_pads(L, k, s, d, lower)


def test_tap_slices_visit_exactly_the_inside_taps():
    for L, k, s, d, b, a, ceil in itertools.product(range(1, 7), range(1, 4), range(1, 3),
                                                    range(1, 3), range(3), range(3),
                                                    (False, True)):
        g = _geometry.windows((L,), (k,), (s,), (d,), ((b, a),), ceil)
        if g.out_size[0] < 1:
            continue
        seen = set()
        for t, (osl,), (isl,) in g.tap_slices():
            outs = range(g.out_size[0])[osl]
            ins = range(L)[isl]
            assert len(outs) == len(ins)
            seen |= {(o, t, i) for o, i in zip(outs, ins)}
        brute = {(o, j, o * s - b + j * d) for o in range(g.out_size[0]) for j in range(k)
                 if 0 <= o * s - b + j * d < L}
        assert seen == brute


def _random_bounds(rng, size):
    """Chunk boundaries 0 = b_0 < ... < b_m = size: chunks of 1 .. size, ragged at the end."""
    cuts = sorted(rng.sample(range(1, size), rng.randint(0, size - 1))) if size > 1 else []
    return (0, *cuts, size)


def _taps(o, k, s, d, before):
    return [o * s - before + j * d for j in range(k)]


def test_chunk_blocks_reproduce_every_window_and_divisor_from_their_own_input():
    import random
    rng = random.Random(12)
    configs = itertools.product(range(1, 10), range(1, 4), range(1, 4), range(1, 3), range(4),
                                range(4), (False, True))
    for L, k, s, d, b, a, ceil in configs:
        n = naive.count_windows(L, k, s, d, b, a, ceil)
        if n < 1:
            continue
        for _ in range(3):
            bounds = _random_bounds(rng, L)
            blocks = _geometry.chunk_blocks(L, k, s, d, b, a, ceil, bounds)
            where = (L, k, s, d, b, a, ceil, bounds, blocks)
            # the blocks partition the outputs, in order, at most one per chunk
            assert blocks[0].out_lo == 0 and blocks[-1].out_hi == n, where
            assert all(p.out_hi == q.out_lo for p, q in zip(blocks, blocks[1:])), where
            assert all(bl.out_hi > bl.out_lo for bl in blocks), where
            assert len(blocks) <= len(bounds) - 1, where
            for bl in blocks:
                size = bl.in_hi - bl.in_lo
                assert 0 <= bl.in_lo < bl.in_hi <= L and bl.pad_before >= 0 and bl.pad_after >= 0
                # the block's own call gives exactly its outputs ...
                assert naive.count_windows(size, k, s, d, bl.pad_before, bl.pad_after, ceil) == \
                    bl.out_hi - bl.out_lo, where
                inside = []
                for o in range(bl.out_lo, bl.out_hi):
                    whole = _taps(o, k, s, d, b)
                    local = [bl.in_lo + t for t in _taps(o - bl.out_lo, k, s, d, bl.pad_before)]
                    # ... each reading the same positions (taps inside the input stay inside
                    # the block's input) ...
                    assert whole == local, where
                    assert all(bl.in_lo <= t < bl.in_hi for t in whole if 0 <= t < L), where
                    inside += [t for t in whole if 0 <= t < L]
                    # ... with the same divisors, padded positions counted or not
                    lo, hi = bl.in_lo - bl.pad_before, bl.in_hi + bl.pad_after
                    assert sum(lo <= t < hi for t in whole) == \
                        sum(-b <= t < L + a for t in whole), where
                # the halo is exactly what the windows read (dilation 1: every position)
                if inside and d == 1:
                    assert (bl.in_lo, bl.in_hi) == (min(inside), max(inside) + 1), where


def test_chunk_blocks_follow_the_chunks():
    # output block i holds the windows starting in chunk i: output chunks ~ input chunk / stride
    blocks = _geometry.chunk_blocks(100, 3, 2, 1, 1, 1, False, (0, 30, 60, 90, 100))
    assert [(bl.out_lo, bl.out_hi) for bl in blocks] == [(0, 16), (16, 31), (31, 46), (46, 50)]
    assert [(bl.in_lo, bl.in_hi) for bl in blocks] == [(0, 32), (31, 62), (61, 92), (91, 100)]
    # every window in the padding but one chunk's worth: one block, the whole dim
    assert _geometry.chunk_blocks(1, 1, 10, 1, 5, 0, False, (0, 1)) == \
        (_geometry.Block(0, 1, 0, 1, 5, 0),)


def test_adaptive_chunk_blocks_hold_the_windows_starting_in_each_chunk():
    import random
    rng = random.Random(7)
    for L in range(1, 14):
        for out in range(1, 2 * L + 2):
            for _ in range(2):
                bounds = _random_bounds(rng, L)
                blocks = _geometry.adaptive_chunk_blocks(L, out, bounds)
                where = (L, out, bounds, blocks)
                assert blocks[0].out_lo == 0 and blocks[-1].out_hi == out, where
                assert all(p.out_hi == q.out_lo for p, q in zip(blocks, blocks[1:])), where
                assert len(blocks) <= len(bounds) - 1, where
                for bl in blocks:
                    # PyTorch's windows, written out: [floor(o L / O), ceil((o + 1) L / O))
                    wins = [(o * L // out, -(-(o + 1) * L // out))
                            for o in range(bl.out_lo, bl.out_hi)]
                    assert (bl.in_lo, bl.in_hi) == (min(w[0] for w in wins),
                                                    max(w[1] for w in wins)), where
                    starts = [w[0] for w in wins]
                    chunk = max(i for i in range(len(bounds) - 1) if bounds[i] <= starts[0])
                    assert all(bounds[chunk] <= t < bounds[chunk + 1] for t in starts), where
    assert _geometry.adaptive_chunk_blocks(5, 0, (0, 2, 5)) == (_geometry.Block(0, 0, 0, 1),)


def test_chunk_pieces_cover_the_range_once():
    bounds = (0, 3, 4, 9, 10)
    for lo in range(10):
        for hi in range(lo + 1, 11):
            got = []
            for c, src, dst in _geometry.chunk_pieces(bounds, lo, hi):
                got += [(bounds[c] + i, j) for i, j in zip(range(10)[src], range(hi - lo)[dst])]
            assert got == [(lo + j, j) for j in range(hi - lo)], (lo, hi)
