// DeepFill v2's ELU gating, forward and backward, each as ONE pass over memory.
//
// The gated convolution of "Free-Form Image Inpainting with Gated Convolution" (Yu et al.,
// ICCV 2019; JiahuiYu/generative_inpainting v2.0.0, gen_conv) outputs
//     y = elu(features) * sigmoid(gate)
// where features and gate are the two halves of the convolution (bias added). With
// TensorFlow's ops that is Elu, Sigmoid and Mul forward and Mul, Mul, EluGrad, SigmoidGrad
// backward: memory-bound passes over tensors of the layer's size that grappler does not fuse
// on CPU (docs/performance.md). These two kernels do it in one pass each:
//
//   DeepfillGatedElu(features, gate) -> y
//   DeepfillGatedEluGrad(dy, features, gate) -> (d_features, d_gate)
//       d_features = dy * s * (features > 0 ? 1 : e + 1),  d_gate = dy * e * s * (1 - s)
//       with e = elu(features), s = sigmoid(gate), recomputed from the inputs.
//
// Float32, any shape (the two inputs of one shape), contiguous as every TF tensor. elu is
// exp(x) - 1 below zero; sigmoid is Eigen's scalar_logistic_op, the kernel of tf.sigmoid.
// Built and loaded by deepfill_tf/native/__init__.py; deepfill_tf/ops/gating.py falls back to
// TensorFlow's ops when it cannot be built.
#define EIGEN_USE_THREADS

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace deepfill_tf {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int64_t kLanes = Eigen::internal::unpacket_traits<Packet>::size;
constexpr int64_t kBlock = 16384;  // elements per work unit of the thread pool

// Splits [0, n) into blocks run on the op's intra-op thread pool: fn(begin, end).
template <typename Fn>
void ForBlocks(OpKernelContext* ctx, int64_t n, int64_t cost_per_element, const Fn& fn) {
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  pool->ParallelFor(blocks, cost_per_element * kBlock, [&](int64_t b0, int64_t b1) {
    const int64_t begin = b0 * kBlock, end = std::min(n, b1 * kBlock);
    if (begin < end) fn(begin, end);
  });
}

// e = elu(a), s = sigmoid(b) and the mask a > 0 of one packet.
inline void EluSigmoid(const Packet& a, const Packet& b, Packet* e, Packet* s, Packet* pos) {
  using namespace Eigen::internal;  // NOLINT: Eigen's packet functions
  *pos = pcmp_lt(pzero(a), a);
  *e = pselect(*pos, a, psub(pexp(a), pset1<Packet>(1.f)));
  *s = scalar_logistic_op<float>().packetOp(b);
}

inline void EluSigmoid(float a, float b, float* e, float* s) {
  *e = a > 0.f ? a : std::exp(a) - 1.f;
  *s = Eigen::internal::scalar_logistic_op<float>()(b);
}

bool SameShapes(OpKernelContext* ctx, const Tensor& a, const Tensor& b, const char* what) {
  if (a.shape() == b.shape()) return true;
  ctx->CtxFailure(__FILE__, __LINE__,
                  ::tensorflow::errors::InvalidArgument(
                      what, " must have one shape, got ", a.shape().DebugString(), " and ",
                      b.shape().DebugString()));
  return false;
}

class GatedEluOp : public OpKernel {
 public:
  explicit GatedEluOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& features = ctx->input(0);
    const Tensor& gate = ctx->input(1);
    if (!SameShapes(ctx, features, gate, "features and gate")) return;
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, features.shape(), &output));
    const float* a = features.flat<float>().data();
    const float* b = gate.flat<float>().data();
    float* y = output->flat<float>().data();
    ForBlocks(ctx, features.NumElements(), 30, [&](int64_t begin, int64_t end) {
      using namespace Eigen::internal;  // NOLINT
      int64_t i = begin;
      for (; i + kLanes <= end; i += kLanes) {
        Packet e, s, pos;
        EluSigmoid(ploadu<Packet>(a + i), ploadu<Packet>(b + i), &e, &s, &pos);
        pstoreu(y + i, pmul(e, s));
      }
      for (; i < end; ++i) {
        float e, s;
        EluSigmoid(a[i], b[i], &e, &s);
        y[i] = e * s;
      }
    });
  }
};

class GatedEluGradOp : public OpKernel {
 public:
  explicit GatedEluGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& grad = ctx->input(0);
    const Tensor& features = ctx->input(1);
    const Tensor& gate = ctx->input(2);
    if (!SameShapes(ctx, features, gate, "features and gate")) return;
    if (!SameShapes(ctx, grad, features, "grad and features")) return;
    Tensor* d_features = nullptr;
    Tensor* d_gate = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, features.shape(), &d_features));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, gate.shape(), &d_gate));
    const float* dy = grad.flat<float>().data();
    const float* a = features.flat<float>().data();
    const float* b = gate.flat<float>().data();
    float* da = d_features->flat<float>().data();
    float* db = d_gate->flat<float>().data();
    ForBlocks(ctx, features.NumElements(), 40, [&](int64_t begin, int64_t end) {
      using namespace Eigen::internal;  // NOLINT
      const Packet one = pset1<Packet>(1.f);
      int64_t i = begin;
      for (; i + kLanes <= end; i += kLanes) {
        Packet e, s, pos;
        EluSigmoid(ploadu<Packet>(a + i), ploadu<Packet>(b + i), &e, &s, &pos);
        const Packet g = ploadu<Packet>(dy + i);
        const Packet gs = pmul(g, s);  // the gradient at elu's output
        pstoreu(da + i, pselect(pos, gs, pmul(gs, padd(e, one))));
        pstoreu(db + i, pmul(pmul(g, e), pmul(s, psub(one, s))));
      }
      for (; i < end; ++i) {
        float e, s;
        EluSigmoid(a[i], b[i], &e, &s);
        const float gs = dy[i] * s;
        da[i] = a[i] > 0.f ? gs : gs * (e + 1.f);
        db[i] = (dy[i] * e) * (s * (1.f - s));
      }
    });
  }
};

}  // namespace
}  // namespace deepfill_tf

REGISTER_OP("DeepfillGatedElu")
    .Input("features: float")
    .Input("gate: float")
    .Output("output: float")
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle shape;
      TF_RETURN_IF_ERROR(c->Merge(c->input(0), c->input(1), &shape));
      c->set_output(0, shape);
      return absl::OkStatus();
    });

REGISTER_OP("DeepfillGatedEluGrad")
    .Input("grad: float")
    .Input("features: float")
    .Input("gate: float")
    .Output("d_features: float")
    .Output("d_gate: float")
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle shape;
      TF_RETURN_IF_ERROR(c->Merge(c->input(1), c->input(2), &shape));
      TF_RETURN_IF_ERROR(c->Merge(shape, c->input(0), &shape));
      c->set_output(0, shape);
      c->set_output(1, shape);
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("DeepfillGatedElu").Device(::tensorflow::DEVICE_CPU),
                        deepfill_tf::GatedEluOp);
REGISTER_KERNEL_BUILDER(Name("DeepfillGatedEluGrad").Device(::tensorflow::DEVICE_CPU),
                        deepfill_tf::GatedEluGradOp);
