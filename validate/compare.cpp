// validate/compare.cpp: placeholder.
