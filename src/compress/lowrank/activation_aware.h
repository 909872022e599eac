// What activation-aware factorization needs from the data: the input second moment S = E[x x^T]
// of chosen Linears (one calibration pass) and its whitening factor L (S = L L^T). The output
// error of W' on that data is ||(W - W') L||_F, so spectrum.h truncates W L instead of W.
// Legend: out/in a Linear's output/input width, r rank, n calibration rows (tokens).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "model/vit.h"

namespace vitopt::lowrank {

// Second moments E[x x^T] (in, in), float64, of the inputs of the named Linears over `images`
// (one forward pass in batches, every token a row). A Linear used by several blocks (sharing)
// sees all of its users' inputs. Throws InputError for a name that is not a Linear or one that
// already has an input hook (a quantized model).
std::map<std::string, torch::Tensor> input_second_moments(model::ViT& model,
                                                          const std::vector<std::string>& linears,
                                                          const std::vector<torch::Tensor>& images);

// The whitening factor L (in, in), lower triangular, of S damped by `damping` * mean(diag S) on
// the diagonal (so directions the data never uses still get a tiny weight and L is invertible).
torch::Tensor whitening(const torch::Tensor& second_moment, double damping = 1e-4);

}  // namespace vitopt::lowrank
