"""A KV-cache layer that grows into a buffer allocated once, instead of re-concatenating.

``DynamicLayer.update`` concatenates the new key/value states onto the whole cache at every
step, re-allocating and copying it each time; for the engine's 2B rows that copying costs as
much as the attention itself. :class:`PreallocatedLayer` keeps the same interface (it *is*
a ``DynamicLayer``, inside the model's ``DynamicCache``) but writes each step into spare
capacity reserved after the prefill and exposes the filled part as a view.
"""

from __future__ import annotations

from typing import Any

from transformers.cache_utils import DynamicLayer


def left_pad_to(x: Any, width: int, dim: int = -2) -> Any:
    """``x`` with ``width - x.shape[dim]`` zeros in front along ``dim`` (masked padding of a
    cache's time axis, or of a mask's columns); ``x`` itself when it is that wide already."""
    import torch

    missing = width - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x.new_zeros(shape), x], dim=dim)


class PreallocatedLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys/values live in a buffer of ``capacity`` positions."""

    def __init__(self, keys: Any, values: Any, capacity: int):
        super().__init__()
        self.is_initialized = True
        self.device = keys.device
        self._length = keys.shape[-2]
        shape = (*keys.shape[:-2], max(capacity, self._length), keys.shape[-1])
        self._key_buf = keys.new_empty(shape)
        self._value_buf = values.new_empty((*shape[:-1], values.shape[-1]))
        self._key_buf[..., : self._length, :] = keys
        self._value_buf[..., : self._length, :] = values
        self._expose()

    def _expose(self) -> None:
        self.keys = self._key_buf[..., : self._length, :]
        self.values = self._value_buf[..., : self._length, :]

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any):
        end = self._length + key_states.shape[-2]
        if end > self._key_buf.shape[-2]:  # out of room: re-allocate with double the room
            return self._grow(key_states, value_states)
        self._key_buf[..., self._length : end, :] = key_states
        self._value_buf[..., self._length : end, :] = value_states
        self._length = end
        self._expose()
        return self.keys, self.values

    def _grow(self, key_states: Any, value_states: Any):
        import torch

        keys = torch.cat([self.keys, key_states], dim=-2)
        values = torch.cat([self.values, value_states], dim=-2)
        self.__init__(keys, values, 2 * keys.shape[-2])
        return self.keys, self.values

    def batch_select_indices(self, indices: Any) -> None:
        self._key_buf = self._key_buf[indices]
        self._value_buf = self._value_buf[indices]
        self._expose()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0:
            self._length = max(0, self._length + tokens_to_remove)
            self._expose()


def preallocate(cache: Any, extra_positions: int) -> None:
    """Give every layer of a plain ``DynamicCache`` room for ``extra_positions`` more tokens."""
    for i, layer in enumerate(cache.layers):
        capacity = layer.keys.shape[-2] + extra_positions
        cache.layers[i] = PreallocatedLayer(layer.keys, layer.values, capacity)
