#define BOOST_TEST_MODULE test_samples
#include <boost/test/unit_test.hpp>
BOOST_AUTO_TEST_CASE(todo){BOOST_TEST(true);}
