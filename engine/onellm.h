/* libonellm: OneLLM inference on Vulkan compute, without GStreamer. Include this one header. */
#pragma once

#include "error.h"
#include "types.h"
#include "gguf.h"
#include "device.h"
#include "memory.h"
#include "tensor.h"
#include "graph.h"
#include "ops.h"
#include "npy.h"
#include "preprocess.h"
#include "tokenizer.h"
#include "sampler.h"
#include "prompt.h"
#include "model.h"
#include "encoder.h"
#include "session.h"
