// engine/cli/cmd_presets.cpp: `minfer presets`: every preset with a one-line summary.
#include <cstdio>

#include "engine/cli/commands.h"
#include "engine/cli/util.h"
#include "engine/core/presets.h"

namespace minfer::cli {

CLI::App* add_presets_command(CLI::App& app) {
  return app.add_subcommand("presets",
                            "List the built-in presets (family, layers, hidden, parameters). Use one as "
                            "--model preset:NAME.");
}

int run_presets() {
  std::printf("%-16s %-10s %6s %6s %6s %10s %10s\n", "name", "family", "layers", "hidden", "experts", "params",
              "active");
  for (const std::string& name : preset_names()) {
    ModelConfig c = preset_config(name);
    ParamCount p = count_params(c);
    std::string experts = c.is_moe() ? std::to_string(c.top_k) + "/" + std::to_string(c.num_experts) : "-";
    std::printf("%-16s %-10s %6d %6d %6s %10s %10s\n", name.c_str(), c.model_type.c_str(), c.layers, c.hidden,
                experts.c_str(), human_count(p.total).c_str(), human_count(p.active).c_str());
  }
  return 0;
}

}  // namespace minfer::cli
